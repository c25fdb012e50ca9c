package sd

import "testing"

// PromptWindows reports how many 77-token windows the pipeline builds for a
// prompt and a negative prompt (with guidance), and the conditioning's
// tokens per batch row, so black-box tests can see the chunking.
func PromptWindows(t testing.TB, m *Model, prompt, negative string) (windows, rows int, tokens int64) {
	t.Helper()
	j := job{Request: Request{Prompt: prompt, NegativePrompt: negative, N: 1, Steps: 1}, cfg: true}
	text, err := m.promptWindows(j)
	if err != nil {
		t.Fatal(err)
	}
	cond, err := m.conditioning(j, &ortClock{})
	if err != nil {
		t.Fatal(err)
	}
	return text.windows, len(text.rows), cond.tokens
}
