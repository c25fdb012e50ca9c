package models

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/sdgate/sdgate/sd/spec"
)

// LoRA variants: a folder with LoRAs merged into its weights is an entry
// of its own, loaded, kept alive and evicted (MaxResident) like any model,
// with its own sessions. LoRA aliases (sdgate.json) are variants with a
// name, rebuilt on rescan; variants for requests' loras live in
// r.variants, which only the worker changes: it looks a variant up (or
// opens it) right before acquiring it, so pruning never races a job.

// allLocked is every entry, variants included; r.mu must be held.
func (r *Registry) allLocked() []*entry {
	all := slices.Collect(maps.Values(r.entries))
	return append(all, slices.Collect(maps.Values(r.variants))...)
}

// scanAllLoRAs lists each folder's LoRAs (runs under rescanMu).
func (r *Registry) scanAllLoRAs(found map[string]*entry) map[string]map[string]LoRAFile {
	out := map[string]map[string]LoRAFile{}
	for id, e := range found {
		loras, skipped := scanLoRAs(e.info.Dir, r.loraMemo)
		for _, err := range skipped {
			r.log.Warn("LoRA left out", "model", id, "err", err)
		}
		out[id] = loras
	}
	return out
}

// loraAliases adds the LoRA aliases of the folders in found to found, as
// variants; an alias that cannot be served is returned as broken. An
// alias whose base and LoRAs are unchanged keeps its old entry (and its
// loaded sessions).
func (r *Registry) loraAliases(found, old map[string]*entry, loras map[string]map[string]LoRAFile) []Broken {
	var broken []Broken
	for _, id := range slices.Sorted(maps.Keys(found)) {
		base := found[id]
		for _, alias := range slices.Sorted(maps.Keys(base.loraAliases)) {
			e, err := r.loraAlias(alias, base, base.loraAliases[alias], found, old, loras[id])
			if err != nil {
				broken = append(broken, Broken{ID: alias, Err: err})
				r.log.Error("LoRA alias is not usable", "alias", alias, "model", id, "err", err)
				continue
			}
			found[alias] = e
		}
	}
	return broken
}

func (r *Registry) loraAlias(alias string, base *entry, want []spec.LoRA, found, old map[string]*entry, avail map[string]LoRAFile) (*entry, error) {
	if _, clash := found[alias]; clash {
		return nil, fmt.Errorf("%w: LoRA alias %q of %s is already a model's name", spec.ErrBadModel, alias, base.info.ID)
	}
	if r.openVariant == nil {
		return nil, fmt.Errorf("%w: LoRA alias %q: this server merges no LoRAs", spec.ErrBadModel, alias)
	}
	applied, err := applyLoRAs(avail, want)
	if err != nil {
		return nil, fmt.Errorf("%w: LoRA alias %q of %s: %w", spec.ErrBadModel, alias, base.info.ID, err)
	}
	key := variantKey(base.info.ID, applied)
	if o := old[alias]; o != nil && o.base == base && o.key == key {
		return o, nil
	}
	m, err := r.openVariant(base.info.Dir, applied)
	if err != nil {
		return nil, fmt.Errorf("LoRA alias %q of %s: %w", alias, base.info.ID, err)
	}
	info := base.info
	info.ID, info.DisplayName, info.Aliases = alias, "", nil
	info.Base, info.Applied = base.info.ID, applied
	info.Digest = variantDigest(base.info.Digest, applied)
	return &entry{info: info, model: m, keepAlive: base.keepAlive, base: base, applied: applied, key: key}, nil
}

// requestLoRAs is the LoRA list a request on e runs with: a LoRA alias's
// own, then the request's; nil when there is none (e serves it as is).
func (r *Registry) requestLoRAs(e *entry, want []spec.LoRA) ([]AppliedLoRA, error) {
	if len(want) == 0 {
		return nil, nil
	}
	if r.openVariant == nil {
		return nil, &spec.ParamError{Param: "loras", Message: "this server does not merge LoRAs"}
	}
	base := e
	if e.base != nil {
		base = e.base
	}
	if len(e.applied) > 0 && len(e.applied)+len(want) > spec.MaxLoRAs {
		return nil, &spec.ParamError{Param: "loras", Message: fmt.Sprintf("%s already merges %d LoRAs: at most %d in all", e.info.ID, len(e.applied), spec.MaxLoRAs)}
	}
	// By id, not Resolve: an alias may be spelled like a model id.
	requested, err := applyLoRAs(r.Identity().byID[base.info.ID].LoRAs, want)
	if err != nil {
		return nil, err
	}
	return append(slices.Clone(e.applied), requested...), nil
}

// variantFor returns the entry serving e with applied merged: e itself
// when applied is nil, else a resident or new variant (an alias with the
// same LoRAs included). It runs on the worker.
func (r *Registry) variantFor(e *entry, applied []AppliedLoRA) (*entry, error) {
	if applied == nil {
		return e, nil
	}
	base := e
	if e.base != nil {
		base = e.base
	}
	key := variantKey(base.info.ID, applied)
	r.mu.Lock()
	if v := r.variants[key]; v != nil {
		r.mu.Unlock()
		return v, nil
	}
	for _, a := range r.entries {
		if a.key == key && !a.dropped {
			r.mu.Unlock()
			return a, nil
		}
	}
	r.pruneLocked()
	r.mu.Unlock()

	m, err := r.openVariant(base.info.Dir, applied)
	if err != nil {
		return nil, fmt.Errorf("open %s with LoRAs: %w", base.info.ID, err)
	}
	info := base.info
	info.ID, info.DisplayName, info.Aliases = variantID(base.info.ID, applied), "", nil
	info.Base, info.Applied = base.info.ID, applied
	info.Digest = variantDigest(base.info.Digest, applied)
	v := &entry{info: info, model: m, keepAlive: base.keepAlive, base: base, applied: applied, key: key, transient: true}
	r.mu.Lock()
	defer r.mu.Unlock()
	if base.dropped {
		return nil, fmt.Errorf("%w: %s (removed by a rescan while queued)", ErrModelNotFound, base.info.ID)
	}
	r.variants[key] = v
	return v, nil
}

// pruneLocked forgets request variants that are unloaded and idle: they
// hold no sessions, and a later request opens them again.
func (r *Registry) pruneLocked() {
	for key, v := range r.variants {
		if v.inUse == 0 && !v.model.Loaded() {
			delete(r.variants, key)
		}
	}
}

// variantID names a request variant in logs: base+name@scale...
func variantID(base string, applied []AppliedLoRA) string {
	var b strings.Builder
	b.WriteString(base)
	for _, l := range applied {
		b.WriteString("+" + l.Name + "@" + strconv.FormatFloat(l.Scale, 'g', -1, 64))
	}
	return b.String()
}
