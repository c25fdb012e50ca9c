package models

import "testing"

func TestIdentityResolve(t *testing.T) {
	infos := []Info{{ID: "beta", Aliases: []string{"dall-e-3", "house"}}, {ID: "alpha"}}
	cfg := IdentityConfig{
		Aliases:        map[string]string{"dall-e-3": "alpha", "gone": "nowhere"},
		DefaultAliases: []string{"dall-e-2", "dall-e-3"},
		Default:        "beta",
	}
	id := NewIdentity(infos, cfg)
	tests := []struct{ name, want string }{
		{"", "beta"},          // the default
		{"dall-e-2", "beta"},  // an OpenAI name nobody configured: the default
		{"dall-e-3", "alpha"}, // the flag wins over beta's sdgate.json
		{"house", "beta"},     // a folder alias
		{"alpha", "alpha"},    // an id
		{"gone", ""},          // a flag alias whose target is missing: not found, not the default
		{"nope", ""},
	}
	for _, tt := range tests {
		got, ok := id.Resolve(tt.name)
		if ok != (tt.want != "") || got.ID != tt.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", tt.name, got.ID, ok, tt.want)
		}
	}
	if d := id.Dangling(); d["gone"] != "nowhere" || len(d) != 1 {
		t.Errorf("dangling %v", d)
	}
	if def := id.Default(); def.ID != "beta" || def.Missing {
		t.Errorf("default %+v", def)
	}

	// The configured default is gone: the first model by id stands in.
	missing := NewIdentity([]Info{{ID: "zeta"}, {ID: "gamma"}}, cfg)
	if def := missing.Default(); def.ID != "gamma" || !def.Missing || def.Configured != "beta" {
		t.Errorf("default with the configured one missing: %+v", def)
	}
	if none := NewIdentity(nil, IdentityConfig{}); none.Default().ID != "" {
		t.Errorf("default with no models: %+v", none.Default())
	}
	if _, ok := NewIdentity(nil, IdentityConfig{}).Resolve(""); ok {
		t.Error("Resolve with no models succeeded")
	}
}
