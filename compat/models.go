package compat

// Model is one entry of GET /v1/models.
type Model struct {
	ID      string `json:"id"`
	Object  string `json:"object"` // always "model"
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
	// sdgate's extensions (OpenAI clients ignore unknown fields): the
	// model family (sd15, sd2, sdxl) and the native size it generates at.
	Family     string `json:"family,omitempty"`
	NativeSize string `json:"native_size,omitempty"`
}

// ModelList is the answer to GET /v1/models.
type ModelList struct {
	Object string  `json:"object"` // always "list"
	Data   []Model `json:"data"`
}

// Object names used in model responses.
const (
	ObjectModel = "model"
	ObjectList  = "list"
)
