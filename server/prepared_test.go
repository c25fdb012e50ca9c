package server

import (
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sdgate/sdgate/compat"
	"github.com/sdgate/sdgate/models"
)

// TestSameTargetKnowsEveryField fails when Target or models.Info gains a
// field, so that sameTarget is taught it before a stale plan could be
// reused for a changed model.
func TestSameTargetKnowsEveryField(t *testing.T) {
	if n := reflect.TypeFor[Target]().NumField(); n != 5 {
		t.Errorf("Target has %d fields; sameTarget compares 5", n)
	}
	if n := reflect.TypeFor[models.Info]().NumField(); n != 20 {
		t.Errorf("models.Info has %d fields; sameInfo compares 20", n)
	}
}

// TestPreparedPlanFollowsTheModel: a body's plan is reused for the same
// resolution of its model, and made again when anything about the model
// differs, down to a sdgate.json map rebuilt with the same content.
func TestPreparedPlanFollowsTheModel(t *testing.T) {
	s, err := New(newFakeGenerator(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base, err := s.resolveModel("sd-tiny")
	if err != nil {
		t.Fatal(err)
	}
	base.Info.QualitySteps = map[string]int{"high": 9}
	p, err := s.prepared.decode([]byte(`{"model":"sd-tiny","prompt":"a lighthouse","quality":"high","seed":3}`))
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.planGeneration(p, base)
	if err != nil {
		t.Fatal(err)
	}
	if first.plan.SD.Steps != 9 {
		t.Fatalf("steps %d, want the model's 9 for quality high", first.plan.SD.Steps)
	}
	if again, _ := s.planGeneration(p, base); again != first {
		t.Error("the same target planned again instead of reusing the plan")
	}
	rebuilt := base
	rebuilt.Info.QualitySteps = maps.Clone(base.Info.QualitySteps)
	rebuilt.Info.QualitySteps["high"] = 12
	changedDefault := base
	changedDefault.Info.DefaultSteps++
	rescanned := base
	rescanned.Info.Created = base.Info.Created.Add(time.Second)
	for name, target := range map[string]Target{"a rebuilt map": rebuilt, "another default": changedDefault, "a rescan": rescanned} {
		got, err := s.planGeneration(p, target)
		if err != nil {
			t.Fatal(err)
		}
		if got == first {
			t.Errorf("%s: reused the plan made for the old model", name)
		}
	}
	if got, _ := s.planGeneration(p, rebuilt); got.plan.SD.Steps != 12 {
		t.Errorf("after the map changed: steps %d, want 12", got.plan.SD.Steps)
	}
}

// TestPreparedDecode: the memo answers what compat decodes, keeps no
// failed body, and keeps a seedless body's decode but never its plan (each
// request draws its own seed).
func TestPreparedDecode(t *testing.T) {
	s, err := New(newFakeGenerator(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, body := range []string{
		`{"prompt":"a lighthouse","n":2,"size":"256x256","seed":7,"guidance_scale":6.5}`,
		`{"prompt":"a lighthouse","loras":[{"name":"ink","scale":0.5}]}`,
		`{"prompt":"` + strings.Repeat("long ", 300) + `"}`, // over preparedMaxBody
	} {
		want, err := compat.DecodeImageGenerationRequest([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			got, err := s.prepared.decode([]byte(body))
			if err != nil || !reflect.DeepEqual(got.req, want) {
				t.Fatalf("decode(%.40s) = %+v, %v; want %+v", body, got.req, err, want)
			}
		}
	}
	if _, err := s.prepared.decode([]byte(`{"prompt":1}`)); err == nil {
		t.Fatal("a bad body decoded")
	}
	if s.prepared.recent.Contains(`{"prompt":1}`) {
		t.Error("a body that failed to decode was kept")
	}
	if s.prepared.recent.Len() != 2 {
		t.Errorf("memo holds %d bodies, want the 2 short ones", s.prepared.recent.Len())
	}

	seedless, _ := s.prepared.decode([]byte(`{"model":"sd-tiny","prompt":"a lighthouse"}`))
	target, _ := s.resolveModel("sd-tiny")
	a, _ := s.planGeneration(seedless, target)
	b, _ := s.planGeneration(seedless, target)
	if a == b || seedless.planned.Load() != nil {
		t.Error("a seedless body's plan was kept")
	}
}
