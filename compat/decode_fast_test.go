package compat

import (
	"encoding/json"
	"testing"
)

// TestStringFastPathMatchesUnmarshal: the no-escape shortcut gives what
// json.Unmarshal gives, and escaped or non-ASCII strings still go through
// json.Unmarshal.
func TestStringFastPathMatchesUnmarshal(t *testing.T) {
	for _, raw := range []string{`""`, `"a lighthouse"`, `"tab\there"`, `"quote \" in"`, `"\u00e9t\u00e9"`,
		`"été"`, "\"bad \xff utf8\"", `"back\\slash"`, `"/slash\/"`} {
		var want string
		if err := json.Unmarshal([]byte(raw), &want); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		var got string
		if err := stringInto(&got)(json.RawMessage(raw), "prompt"); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if got != want {
			t.Errorf("%s: got %q, want %q", raw, got, want)
		}
	}
	if plainString(json.RawMessage(`"a\"b"`)) || !plainString(json.RawMessage(`"plain"`)) {
		t.Error("plainString misjudges escapes")
	}
}
