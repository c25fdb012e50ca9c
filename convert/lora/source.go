package lora

import (
	"fmt"
	"slices"
	"strings"
)

// Source supplies a model's parameters by network and state-dict name in
// torch's layout: models/synth's Weights interface, which a checkpoint
// (convert.Checkpoint) satisfies.
type Source interface {
	Check(net, name string, shape []int64) error
	Float32(net, name string, shape []int64) ([]float32, error)
}

// Merged is a Source with LoRAs merged in as each tensor is read: writing a
// model folder from it bakes the LoRAs into the folder, one tensor in
// memory at a time.
type Merged struct {
	base Source
	jobs map[string][]job // net/name -> modules to add, in order
}

var _ Source = (*Merged)(nil)

// Apply resolves loras against weights (every weight of the model: the
// names a module may match) and returns base with them merged. Matching
// and strictness are Merge's.
func Apply(base Source, weights []Spec, strict bool, loras ...Scaled) (*Merged, Report, error) {
	targets := make([]*Target, 0, len(weights))
	for _, w := range weights {
		if len(w.Shape) >= 2 && strings.HasSuffix(w.Name, ".weight") {
			targets = append(targets, &Target{Net: w.Net, Name: w.Name, Shape: w.Shape})
		}
	}
	jobs, rep, err := resolve(targets, strict, loras)
	if err != nil {
		return nil, rep, err
	}
	m := &Merged{base: base, jobs: map[string][]job{}}
	for _, j := range jobs {
		key := j.t.Net + "/" + j.t.Name
		m.jobs[key] = append(m.jobs[key], j)
	}
	return m, rep, nil
}

// Check is the base's.
func (m *Merged) Check(net, name string, shape []int64) error { return m.base.Check(net, name, shape) }

// Float32 is the base's values plus the deltas of the modules adapting it.
func (m *Merged) Float32(net, name string, shape []int64) ([]float32, error) {
	vals, err := m.base.Float32(net, name, shape)
	if err != nil {
		return nil, err
	}
	jobs := m.jobs[net+"/"+name]
	if len(jobs) == 0 {
		return vals, nil
	}
	if !slices.Equal(shape, jobs[0].t.Shape) {
		return nil, fmt.Errorf("%w: %s %q asked as %v, merged as %v", ErrShape, net, name, shape, jobs[0].t.Shape)
	}
	vals = slices.Clone(vals) // the base's slice stays the base's
	for _, j := range jobs {
		j.apply(vals)
	}
	return vals, nil
}
