package sd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/sdgate/sdgate/sd/clip"
	"github.com/sdgate/sdgate/sd/scheduler"
	"github.com/sdgate/sdgate/sd/spec"
)

// Model is a loaded Stable Diffusion ONNX folder (the optimum / diffusers
// layout): tokenizer, scheduler config and one ONNX Runtime session per
// network, created once and reused until Close.
type Model struct {
	Dir  string
	Spec Spec

	tokenizer   *clip.Tokenizer
	schedConfig scheduler.Config
	textEncoder *textEncoder
	unet        *unet
	vaeDecoder  *vaeDecoder
	vaeEncoder  *vaeEncoder // nil when the folder has none
	xl          *xlParts    // SDXL's two encoders (textEncoder is nil then)

	// mu guards the session state; Generate holds it for reading, so a
	// model cannot be unloaded under a running generation.
	mu         sync.RWMutex
	loaded     bool
	useEncoder bool
}

// NetworkInfo describes one loaded network, for logs and `sdgate generate -v`.
type NetworkInfo struct {
	Name    string
	Device  string
	Created string // session creation time
	Inputs  []string
	Outputs []string
}

// LoadOptions tune Load; the zero value is fine.
type LoadOptions struct {
	// SkipVAEEncoder leaves the encoder unloaded even when present (text to
	// image only: saves its memory).
	SkipVAEEncoder bool
	// Rewrite, when set, may change the text encoder's and the UNet's
	// graphs before their sessions exist (LoRAs merged into their weights):
	// it gets the network's folder name, its model.onnx path and bytes, and
	// returns the bytes to load (external data is still read beside path).
	Rewrite func(network, path string, model []byte) ([]byte, error)
}

// folderConfig is sdgate.json, optional: what the folder cannot say itself.
type folderConfig struct {
	NativeWidth     int      `json:"native_width"`
	NativeHeight    int      `json:"native_height"`
	DefaultSteps    int      `json:"default_steps"`
	DefaultGuidance *float64 `json:"default_guidance"`
	// DefaultScheduler replaces the scheduler config's own class when a
	// request names none (any name scheduler.New accepts).
	DefaultScheduler string `json:"default_scheduler"`
}

// Open reads and validates a model folder without creating inference
// sessions: Spec and Validate work at once, Generate after Load. Every
// problem is an error wrapping ErrBadModel that names the file. Reading the
// networks' inputs and outputs is ONNX Runtime's work, hence rt.
func Open(rt *Runtime, dir string) (*Model, error) {
	if err := rt.usable(); err != nil {
		return nil, err
	}
	return inspect(dir)
}

// Load opens a model folder and creates its sessions on rt.
func Load(ctx context.Context, rt *Runtime, dir string, opts LoadOptions) (*Model, error) {
	m, err := Open(rt, dir)
	if err != nil {
		return nil, err
	}
	if err := m.Load(ctx, rt, opts); err != nil {
		return nil, err
	}
	return m, nil
}

// Load creates the model's sessions on rt (a no-op when loaded). On error
// nothing stays loaded.
func (m *Model) Load(ctx context.Context, rt *Runtime, opts LoadOptions) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.loaded {
		return nil
	}
	m.useEncoder = m.vaeEncoder != nil && !opts.SkipVAEEncoder
	if err := m.open(ctx, rt, opts.Rewrite); err != nil {
		m.closeSessions()
		return err
	}
	m.loaded = true
	return nil
}

// Loaded reports whether the sessions exist.
func (m *Model) Loaded() bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.loaded
}

func inspect(dir string) (*Model, error) {
	family, xlIdx, err := familyOf(dir)
	if err != nil {
		return nil, err
	}
	var tok *clip.Tokenizer
	if xlIdx == nil {
		if tok, err = clip.Load(filepath.Join(dir, "tokenizer")); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadModel, err)
		}
	}
	schedPath := filepath.Join(dir, "scheduler", "scheduler_config.json")
	sc, err := scheduler.LoadConfig(schedPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadModel, schedPath, err)
	}
	m := &Model{Dir: dir, tokenizer: tok, schedConfig: sc}

	unetNet, err := inspectNetwork(dir, "unet")
	if err != nil {
		return nil, err
	}
	if m.unet, err = newUNet(unetNet); err != nil {
		return nil, err
	}
	if xlIdx != nil {
		if err := m.inspectXL(xlIdx); err != nil {
			return nil, err
		}
	} else if err := m.inspectTextEncoder(); err != nil {
		return nil, err
	}
	vdName, err := vaeDecoderFolder(dir)
	if err != nil {
		return nil, err
	}
	vdNet, err := inspectNetwork(dir, vdName)
	if err != nil {
		return nil, err
	}
	if m.vaeDecoder, err = newVAEDecoder(vdNet); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "vae_encoder", "model.onnx")); err == nil {
		veNet, err := inspectNetwork(dir, "vae_encoder")
		if err != nil {
			return nil, err
		}
		if m.vaeEncoder, err = newVAEEncoder(veNet); err != nil {
			return nil, err
		}
	}
	if err := m.readSpec(family); err != nil {
		return nil, err
	}
	return m, nil
}

// inspectTextEncoder reads SD 1.x/2.x's one text encoder.
func (m *Model) inspectTextEncoder() error {
	teNet, err := inspectNetwork(m.Dir, "text_encoder")
	if err != nil {
		return err
	}
	if m.textEncoder, err = newTextEncoder(teNet, m.unet.hidden); err != nil {
		return err
	}
	if m.unet.textEmbedsDim > 0 {
		return fmt.Errorf("%w: %s: the UNet takes SDXL's text_embeds and time_ids but the folder has no text_encoder_2", ErrBadModel, m.unet.path)
	}
	if m.unet.hidden > 0 && m.unet.hidden != m.textEncoder.hidden {
		return fmt.Errorf("%w: %s: text encoder width %d does not match the UNet's encoder_hidden_states width %d",
			ErrBadModel, m.Dir, m.textEncoder.hidden, m.unet.hidden)
	}
	if int(m.textEncoder.length) != m.tokenizer.MaxLength() {
		return fmt.Errorf("%w: %s: tokenizer pads to %d tokens but the text encoder takes %d",
			ErrBadModel, m.Dir, m.tokenizer.MaxLength(), m.textEncoder.length)
	}
	return nil
}

// readSpec fills Spec from the configs real exports carry (unet/config.json
// sample_size, vae_decoder/config.json scaling_factor) and sdgate.json.
func (m *Model) readSpec(family string) error {
	s := Spec{
		Family:      m.family(family),
		NativeWidth: 512, NativeHeight: 512,
		DefaultSteps: 25, DefaultGuidance: 7.5,
		Scheduler:     m.schedConfig.ClassName,
		ScalingFactor: 0.18215,
		Inpainting:    m.unet.channels == 9,
		CanEncode:     m.vaeEncoder != nil,
		FP16:          m.unet.sampleType == ort.TensorElementDataTypeFloat16,
		LCM:           m.unet.condDim > 0,
		MaxTokens:     m.tokenizer.MaxLength(),
	}
	var unetCfg struct {
		SampleSize int `json:"sample_size"`
	}
	if err := readJSONFile(filepath.Join(m.Dir, "unet", "config.json"), &unetCfg, false); err != nil {
		return err
	}
	if s.Family == spec.FamilySDXL {
		s.NativeWidth, s.NativeHeight, s.DefaultGuidance = 1024, 1024, 5 // diffusers' SDXL defaults
	}
	if unetCfg.SampleSize > 0 {
		s.NativeWidth, s.NativeHeight = 8*unetCfg.SampleSize, 8*unetCfg.SampleSize
	}
	var vaeCfg struct {
		ScalingFactor float64 `json:"scaling_factor"`
	}
	if err := readJSONFile(filepath.Join(m.Dir, "vae_decoder", "config.json"), &vaeCfg, false); err != nil {
		return err
	}
	if vaeCfg.ScalingFactor > 0 {
		s.ScalingFactor = vaeCfg.ScalingFactor
	}
	var fc folderConfig
	if err := readJSONFile(filepath.Join(m.Dir, "sdgate.json"), &fc, false); err != nil {
		return err
	}
	if fc.NativeWidth > 0 && fc.NativeHeight > 0 {
		s.NativeWidth, s.NativeHeight = fc.NativeWidth, fc.NativeHeight
	}
	if fc.DefaultSteps > 0 {
		s.DefaultSteps = fc.DefaultSteps
	}
	if fc.DefaultGuidance != nil && *fc.DefaultGuidance >= 0 {
		s.DefaultGuidance = *fc.DefaultGuidance // 0: Turbo models run without guidance
	}
	if fc.DefaultScheduler != "" {
		if _, err := scheduler.New(fc.DefaultScheduler, m.schedConfig, s.DefaultSteps); err != nil {
			return fmt.Errorf("%w: %s: default_scheduler: %v", ErrBadModel, filepath.Join(m.Dir, "sdgate.json"), err)
		}
		s.Scheduler = fc.DefaultScheduler
	}
	if s.NativeWidth%8 != 0 || s.NativeHeight%8 != 0 {
		return fmt.Errorf("%w: %s: native size %dx%d is not a multiple of 8", ErrBadModel, m.Dir, s.NativeWidth, s.NativeHeight)
	}
	s.Buckets = spec.Buckets(s.NativeWidth, s.NativeHeight)
	m.Spec = s
	return nil
}

func readJSONFile(path string, v any, required bool) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !required {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadModel, path, errors.Unwrap(err))
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %s: invalid JSON: %v", ErrBadModel, path, err)
	}
	return nil
}

// open creates the sessions: the text encoder asks only for
// last_hidden_state, the UNet may need its timestep input rewritten.
func (m *Model) open(ctx context.Context, rt *Runtime, rewrite func(network, path string, model []byte) ([]byte, error)) error {
	// The text encoders are rewritten before the UNet (convert/onnxlora's
	// Rewriter counts on it).
	if m.xl != nil {
		if err := m.xl.open(ctx, rt, rewrite); err != nil {
			return err
		}
	} else {
		teBytes, err := rewritten(m.textEncoder.network, rewrite)
		if err != nil {
			return err
		}
		if err := m.textEncoder.open(ctx, rt, teBytes, "last_hidden_state"); err != nil {
			return err
		}
	}
	unetBytes, err := rewritten(m.unet.network, rewrite)
	if err != nil {
		return err
	}
	if m.unet.castScalar {
		data := unetBytes
		if data == nil {
			if data, err = os.ReadFile(m.unet.path); err != nil {
				return fmt.Errorf("read %s: %w", m.unet.path, err)
			}
		}
		if unetBytes, err = castScalarInputToFloat(data, "timestep"); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrBadModel, m.unet.path, err)
		}
		for i := range m.unet.inputs {
			if m.unet.inputs[i].Name == "timestep" {
				m.unet.inputs[i].Name = scalarInputName
			}
		}
	}
	if err := m.unet.open(ctx, rt, unetBytes); err != nil {
		return err
	}
	if err := m.vaeDecoder.open(ctx, rt, nil); err != nil {
		return err
	}
	if m.useEncoder {
		if err := m.vaeEncoder.open(ctx, rt, nil, m.vaeEncoder.outName); err != nil {
			return err
		}
	}
	return nil
}

// rewritten is n's graph as rewrite makes it; nil (load the file) without one.
func rewritten(n *network, rewrite func(network, path string, model []byte) ([]byte, error)) ([]byte, error) {
	if rewrite == nil {
		return nil, nil
	}
	data, err := os.ReadFile(n.path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", n.path, err)
	}
	out, err := rewrite(n.name, n.path, data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n.name, err)
	}
	return out, nil
}

// Networks describes the loaded networks.
func (m *Model) Networks() []NetworkInfo {
	var out []NetworkInfo
	for _, n := range m.networks() {
		info := NetworkInfo{Name: n.name, Device: n.device.String(), Created: n.created.Round(1e5).String()}
		for _, s := range n.inputs {
			info.Inputs = append(info.Inputs, s.String())
		}
		for _, s := range n.outputs {
			info.Outputs = append(info.Outputs, s.String())
		}
		out = append(out, info)
	}
	return out
}

func (m *Model) networks() []*network {
	var list []*network
	if m.xl != nil {
		list = append(list, m.xl.enc1.network, m.xl.enc2.network)
	} else {
		list = append(list, m.textEncoder.network)
	}
	list = append(list, m.unet.network, m.vaeDecoder.network)
	if m.vaeEncoder != nil {
		list = append(list, m.vaeEncoder.network)
	}
	return list
}

// Close releases every session; Load can create them again. It waits for
// running generations to finish.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.loaded = false
	return m.closeSessions()
}

func (m *Model) closeSessions() error {
	var errs []error
	for _, n := range m.networks() {
		if err := n.close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Tokens counts the CLIP tokens text encodes to, start and end included and
// before truncation (usage figures).
func (m *Model) Tokens(text string) int { return len(m.tokenizer.Encode(text)) }
