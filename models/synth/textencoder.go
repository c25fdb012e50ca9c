package synth

// textConfig is the shape of a CLIPTextModel.
type textConfig struct {
	vocab  int64 // rows of the token embedding: the tokenizer's largest id + 1
	hidden int64
	layers int
	heads  int64
	maxLen int64 // 77 for every SD model
	// gelu: the MLP uses exact GELU (OpenCLIP, SD 2) instead of CLIP's
	// quick GELU (SD 1).
	gelu bool
	// hiddenStates adds transformers' hidden_states.0 .. hidden_states.L
	// outputs (embeddings, then each layer's output), as optimum exports
	// SDXL's encoders: SDXL conditions on the penultimate one.
	hiddenStates bool
	// projection > 0 makes a CLIPTextModelWithProjection (SDXL's
	// text_encoder_2): text_embeds = pooled state times text_projection,
	// output first, and no pooler_output.
	projection int64
}

// maskValue stands in for -inf in the causal mask: exp() of it is 0 in fp32
// and fp16 alike, and adding it to a score cannot overflow fp16.
const maskValue = -10000

// buildTextEncoder writes a CLIP text transformer: input_ids in,
// last_hidden_state and pooler_output (the state at the first EOS, found
// as CLIP does with argmax over the ids) out.
func buildTextEncoder(cfg textConfig, o netOptions, ids64 bool) *graph {
	return buildTextEncoderAs("text_encoder", cfg, o, ids64)
}

// buildTextEncoderAs is buildTextEncoder for the network net (SDXL's
// text_encoder_2: its own weights and graph name).
func buildTextEncoderAs(net string, cfg textConfig, o netOptions, ids64 bool) *graph {
	b := newNetBuilder(net, o)
	idType := dtInt32
	if ids64 {
		idType = dtInt64
	}
	ids := b.input("input_ids", idType, sym("batch"), fixed(cfg.maxLen))

	const prefix = "text_model."
	tok := b.weight(prefix+"embeddings.token_embedding.weight", 1, cfg.vocab, cfg.hidden)
	pos := b.weight(prefix+"embeddings.position_embedding.weight", 1, cfg.maxLen, cfg.hidden)
	h := b.op("Add", []string{b.op("Gather", []string{tok, ids}, attrI("axis", 0)), pos})
	states := []string{h}

	mask := make([]float32, cfg.maxLen*cfg.maxLen)
	for i := range cfg.maxLen {
		for j := i + 1; j < cfg.maxLen; j++ {
			mask[i*cfg.maxLen+j] = maskValue
		}
	}
	causal := b.floats(o.float, []int64{cfg.maxLen, cfg.maxLen}, mask...)

	for i := range cfg.layers {
		l := join(prefix+"encoder.layers", i)
		attn := attnSpec{
			q: l + ".self_attn.q_proj", k: l + ".self_attn.k_proj", v: l + ".self_attn.v_proj",
			out: l + ".self_attn.out_proj", dim: cfg.hidden, ctxDim: cfg.hidden, heads: cfg.heads,
			qkvBias: true, mask: causal,
		}
		n := b.layerNorm(h, l+".layer_norm1", cfg.hidden, 1e-5)
		h = b.op("Add", []string{h, b.attention(n, n, attn)})

		n = b.layerNorm(h, l+".layer_norm2", cfg.hidden, 1e-5)
		m := b.linear(n, l+".mlp.fc1", cfg.hidden, 4*cfg.hidden, true)
		if cfg.gelu {
			m = b.gelu(m)
		} else {
			m = b.quickGELU(m)
		}
		m = b.linear(m, l+".mlp.fc2", 4*cfg.hidden, cfg.hidden, true)
		h = b.op("Add", []string{h, m})
		states = append(states, h)
	}
	h = b.layerNorm(h, prefix+"final_layer_norm", cfg.hidden, 1e-5)
	pooled := b.pooled(h, ids, ids64)
	if cfg.projection > 0 {
		proj := b.op("MatMul", []string{pooled, b.matmulWeight("text_projection.weight", fanInStd(cfg.hidden), cfg.hidden, cfg.projection)})
		b.output(proj, "text_embeds", o.float, sym("batch"), fixed(cfg.projection))
	}
	b.output(h, "last_hidden_state", o.float, sym("batch"), fixed(cfg.maxLen), fixed(cfg.hidden))
	if cfg.projection <= 0 {
		b.output(pooled, "pooler_output", o.float, sym("batch"), fixed(cfg.hidden))
	}
	if cfg.hiddenStates {
		for i, s := range states {
			b.output(s, join("hidden_states", i), o.float, sym("batch"), fixed(cfg.maxLen), fixed(cfg.hidden))
		}
	}
	return b.g
}

// pooled is CLIP's pooled state: h at the first EOS, found as CLIP does
// with argmax over the ids (EOS is the largest id).
func (b *builder) pooled(h, ids string, ids64 bool) string {

	// ArgMax wants int32 on ORT's CPU provider; ids are < 2^31 anyway.
	idx := ids
	if ids64 {
		idx = b.op("Cast", []string{ids}, attrI("to", int64(dtInt32)))
	}
	eos := b.op("ArgMax", []string{idx}, attrI("axis", -1), attrI("keepdims", 1)) // [B, 1]
	return b.op("GatherND", []string{h, eos}, attrI("batch_dims", 1))             // [B, hidden]
}
