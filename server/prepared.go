package server

import (
	"reflect"
	"sync/atomic"
	"unsafe"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/sdgate/sdgate/cache"
	"github.com/sdgate/sdgate/compat"
	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/sd/spec"
)

// A cache hit is, by definition, a body the server has seen before. What
// a generations body means is kept for recent bodies and reused, so a hit
// skips the work that was most of its cost:
//
//   - the decode (field by field, so that every type mistake names its
//     field) is a pure function of the bytes and is always reused;
//   - the validation, the plan and the cache key depend on the model too:
//     they are reused only while the model the name resolves to is the
//     very one they were made for (sameTarget), and only for a body that
//     names its seed (a seedless plan draws a new seed every time).
//
// Name resolution, the caller's model access and admission still run on
// every request.

const (
	// preparedEntries bounds the memo; with preparedMaxBody it holds at
	// most 4 MiB of bodies.
	preparedEntries = 4096
	// preparedMaxBody: larger bodies (long prompts, LoRA lists) are decoded
	// every time; typical generations bodies are a few hundred bytes.
	preparedMaxBody = 1 << 10
)

// preparedGenerations maps a generations body to what it means.
type preparedGenerations struct {
	recent *lru.Cache[string, *preparedBody]
}

// preparedBody is one body's decoded request and, once planned, its plan.
// Requests share it: nobody writes through req's pointer fields, into its
// LoRAs, or into a plan's slices.
type preparedBody struct {
	req     compat.ImageGenerationRequest
	planned atomic.Pointer[plannedGeneration]
}

// plannedGeneration is a body's plan for one target, and its cache key.
type plannedGeneration struct {
	target Target
	plan   GenerationPlan
	params cache.Params
	key    cache.Key
}

func newPreparedGenerations() *preparedGenerations {
	recent, err := lru.New[string, *preparedBody](preparedEntries)
	if err != nil { // only for a size <= 0
		panic(err)
	}
	return &preparedGenerations{recent: recent}
}

// decode is compat.DecodeImageGenerationRequest, answered from the memo for
// a body seen before. Bodies that fail to decode are not kept: they cost
// their decode each time, as before.
func (m *preparedGenerations) decode(body []byte) (*preparedBody, error) {
	if len(body) > preparedMaxBody {
		req, err := compat.DecodeImageGenerationRequest(body)
		return &preparedBody{req: req}, err
	}
	key := string(body)
	if p, ok := m.recent.Get(key); ok {
		return p, nil
	}
	req, err := compat.DecodeImageGenerationRequest(body)
	if err != nil {
		return nil, err
	}
	p := &preparedBody{req: req}
	m.recent.Add(key, p)
	return p, nil
}

// planGeneration validates p's request for t and plans it, or reuses the
// plan made for the same target before.
func (s *Server) planGeneration(p *preparedBody, t Target) (*plannedGeneration, error) {
	if done := p.planned.Load(); done != nil && sameTarget(&done.target, &t) {
		return done, nil
	}
	if err := compat.ValidateGeneration(p.req, t.Rules); err != nil {
		return nil, err
	}
	plan, err := FromGenerationRequest(p.req, t, spec.RandomSeed())
	if err != nil {
		return nil, err
	}
	params := s.cacheParams(&imageJob{Endpoint: "generations", Target: t, Plan: plan})
	done := &plannedGeneration{target: t, plan: plan, params: params, key: cache.KeyOf(params)}
	if plan.ExplicitSeed {
		p.planned.Store(done)
	}
	return done, nil
}

// sameTarget reports whether a and b are the same resolution of a name:
// equal values, and the very same slices and maps (a registry rescan
// builds new ones, so a plan never outlives the model folder it was made
// for). TestSameTargetKnowsEveryField keeps it complete.
// Rules are compared by family: resolveModel takes them from RulesFor,
// which builds each family's once.
func sameTarget(a, b *Target) bool {
	return a.Name == b.Name && a.ModelID == b.ModelID && a.Limits == b.Limits &&
		a.Rules.Family == b.Rules.Family && sameInfo(&a.Info, &b.Info)
}

func sameInfo(a, b *models.Info) bool {
	return a.ID == b.ID && a.DisplayName == b.DisplayName && a.Dir == b.Dir && a.Created.Equal(b.Created) &&
		a.Family == b.Family && a.NativeWidth == b.NativeWidth && a.NativeHeight == b.NativeHeight &&
		a.DefaultSteps == b.DefaultSteps && a.DefaultGuidance == b.DefaultGuidance && a.Scheduler == b.Scheduler &&
		a.Inpainting == b.Inpainting && a.CanEncode == b.CanEncode && a.Digest == b.Digest && a.Base == b.Base &&
		sameSlice(a.Buckets, b.Buckets) && sameSlice(a.Aliases, b.Aliases) && sameSlice(a.Applied, b.Applied) &&
		sameMap(a.QualitySteps, b.QualitySteps) && sameMap(a.StyleGuidance, b.StyleGuidance) && sameMap(a.LoRAs, b.LoRAs)
}

// sameSlice: the same backing array and length.
func sameSlice[T any](a, b []T) bool {
	return len(a) == len(b) && unsafe.SliceData(a) == unsafe.SliceData(b)
}

// sameMap: the same map (or both nil).
func sameMap[K comparable, V any](a, b map[K]V) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}
