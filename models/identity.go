package models

import (
	"maps"
	"slices"
)

// Identity is what model names mean between two rescans: the servable
// models, the aliases that point at them, and the default. The Registry
// builds a new one on every rescan, from the flags and every folder's
// sdgate.json, and swaps it in with the model list, so a name never lags
// the folders.
type Identity struct {
	byID    map[string]Info
	ids     []string          // sorted
	aliases map[string]string // alias -> id; every target exists
	// dangling are configured aliases whose target is not servable now:
	// they answer "not found" rather than silently serving another model.
	dangling map[string]string
	fallback map[string]bool // names that mean the default unless configured
	def      DefaultState
}

// DefaultState says which model serves requests that name none, and
// whether that is the configured one.
type DefaultState struct {
	ID         string // the model in effect; "" when none is servable
	Configured string // --default-model; "" = the first model by id
	// Missing: the configured default is not servable (removed or broken),
	// so the first model by id stands in until it is back.
	Missing bool
}

// IdentityConfig is what names are configured to mean.
type IdentityConfig struct {
	// Aliases from the command line; they win over folder aliases.
	Aliases map[string]string
	// DefaultAliases are names that mean the default model unless an alias
	// says otherwise (the OpenAI model names).
	DefaultAliases []string
	// Default is the configured default model; "" = the first by id.
	Default string
}

// NewIdentity resolves cfg against the servable models; folder aliases
// come from each Info.Aliases.
func NewIdentity(infos []Info, cfg IdentityConfig) Identity {
	id := Identity{byID: map[string]Info{}, aliases: map[string]string{}, dangling: map[string]string{},
		fallback: map[string]bool{}}
	for _, m := range infos {
		id.byID[m.ID] = m
	}
	id.ids = slices.Sorted(maps.Keys(id.byID))
	for _, a := range cfg.DefaultAliases {
		id.fallback[a] = true
	}
	for _, m := range id.ids {
		for _, a := range id.byID[m].Aliases {
			if _, set := cfg.Aliases[a]; !set {
				id.aliases[a] = m
			}
		}
	}
	for a, target := range cfg.Aliases {
		if _, ok := id.byID[target]; ok {
			id.aliases[a] = target
		} else {
			delete(id.aliases, a)
			id.dangling[a] = target
		}
	}
	id.def.Configured = cfg.Default
	switch _, ok := id.byID[cfg.Default]; {
	case ok:
		id.def.ID = cfg.Default
	case len(id.ids) > 0:
		id.def.ID = id.ids[0]
		id.def.Missing = cfg.Default != ""
	}
	return id
}

// Resolve maps an alias, a model id, a default alias or "" to a model.
// Aliases win over ids: they are explicit configuration.
func (id Identity) Resolve(name string) (Info, bool) {
	if _, ok := id.dangling[name]; ok {
		return Info{}, false
	}
	if target, ok := id.aliases[name]; ok {
		name = target
	} else if name == "" || id.fallback[name] {
		name = id.def.ID
	}
	info, ok := id.byID[name]
	return info, ok
}

// Models lists the servable models by id.
func (id Identity) Models() []Info {
	out := make([]Info, 0, len(id.ids))
	for _, m := range id.ids {
		out = append(out, id.byID[m])
	}
	return out
}

// Aliases are the names that resolve through an alias now (alias -> id).
func (id Identity) Aliases() map[string]string { return maps.Clone(id.aliases) }

// Dangling are the configured aliases whose target is not servable.
func (id Identity) Dangling() map[string]string { return maps.Clone(id.dangling) }

// Default is the default model in effect.
func (id Identity) Default() DefaultState { return id.def }
