package models

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sdgate/sdgate/sd/spec"
)

// LoRADir is the sub-folder of a model folder that holds its LoRAs:
// NAME.safetensors, or NAME/adapter_model.safetensors as peft saves one
// (with its adapter_config.json beside it).
const LoRADir = "loras"

// LoRAFile is one LoRA a model folder offers.
type LoRAFile struct {
	Name   string // the file name without .safetensors, or the peft folder's name
	Path   string
	Digest string // sha256 of the file (and its peft config), for cache keys and usage
}

// AppliedLoRA is a LoRA at the scale a variant merges it.
type AppliedLoRA struct {
	LoRAFile
	Scale float64
}

// VariantOpener opens the model folder at dir as a variant that merges
// loras into its weights when it loads (cmd wires sd's pipeline with
// convert/onnxlora behind it). Opening is cheap; merging is Load's work.
type VariantOpener func(dir string, loras []AppliedLoRA) (Pipeline, error)

// loraName is what a LoRA may be called: it becomes part of request
// bodies and cache keys, and never a path.
var loraName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// loraDigests remembers file digests between rescans: a LoRA is hashed
// again only when its size or modification time changed.
type loraDigests map[string]loraStamp

type loraStamp struct {
	size    int64
	mod     time.Time
	cfgSize int64
	cfgMod  time.Time
	digest  string
}

// scanLoRAs lists dir's LoRAs. A folder without loras/ has none; a file
// that cannot be read is left out with its error in skipped.
func scanLoRAs(dir string, memo loraDigests) (found map[string]LoRAFile, skipped []error) {
	list, err := os.ReadDir(filepath.Join(dir, LoRADir))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			skipped = append(skipped, err)
		}
		return nil, skipped
	}
	found = map[string]LoRAFile{}
	for _, d := range list {
		name, path, cfg := d.Name(), filepath.Join(dir, LoRADir, d.Name()), ""
		switch {
		case d.IsDir():
			path = filepath.Join(path, "adapter_model.safetensors")
			if _, err := os.Stat(path); err != nil {
				continue // not a peft save
			}
		case strings.HasSuffix(name, ".safetensors"):
			name = strings.TrimSuffix(name, ".safetensors")
		default:
			continue
		}
		cfg = loraConfigPath(path)
		if !loraName.MatchString(name) {
			skipped = append(skipped, fmt.Errorf("%s: LoRA name %q: use letters, digits, '.', '_' and '-'", path, name))
			continue
		}
		digest, err := memo.digest(path, cfg)
		if err != nil {
			skipped = append(skipped, err)
			continue
		}
		found[name] = LoRAFile{Name: name, Path: path, Digest: digest}
	}
	return found, skipped
}

// loraConfigPath is where a LoRA's peft config lives (convert/lora reads
// it there): adapter_config.json beside adapter_model.safetensors,
// NAME.adapter_config.json beside NAME.safetensors.
func loraConfigPath(path string) string {
	dir, base := filepath.Split(path)
	if base == "adapter_model.safetensors" {
		return filepath.Join(dir, "adapter_config.json")
	}
	return filepath.Join(dir, strings.TrimSuffix(base, ".safetensors")+".adapter_config.json")
}

// LoRADigest is LoRAFile.Digest computed afresh: a variant opener checks
// it as it loads, so a file replaced since the last rescan is refused
// rather than served under its old digest (and cache key).
func LoRADigest(path string) (string, error) {
	return loraDigests{}.digest(path, loraConfigPath(path))
}

// digest hashes the LoRA at path and its peft config at cfg (when there
// is one), reusing the last digest of unchanged files.
func (m loraDigests) digest(path, cfg string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	stamp := loraStamp{size: st.Size(), mod: st.ModTime()}
	if cst, err := os.Stat(cfg); err == nil {
		stamp.cfgSize, stamp.cfgMod = cst.Size(), cst.ModTime()
	}
	if old, ok := m[path]; ok && old.size == stamp.size && old.mod.Equal(stamp.mod) &&
		old.cfgSize == stamp.cfgSize && old.cfgMod.Equal(stamp.cfgMod) {
		return old.digest, nil
	}
	h := sha256.New()
	for _, p := range []string{path, cfg} {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) && p == cfg {
			continue
		}
		if err != nil {
			return "", err
		}
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("digest %s: %w", p, err)
		}
		h.Write([]byte{0})
	}
	stamp.digest = "sha256:" + hex.EncodeToString(h.Sum(nil))
	m[path] = stamp
	return stamp.digest, nil
}

// applyLoRAs resolves a request's (or an alias's) LoRA list against the
// LoRAs a folder offers; an unknown name is a 400 on param loras.
func applyLoRAs(avail map[string]LoRAFile, want []spec.LoRA) ([]AppliedLoRA, error) {
	if err := spec.ValidateLoRAs(want); err != nil {
		return nil, err
	}
	out := make([]AppliedLoRA, 0, len(want))
	for _, l := range want {
		f, ok := avail[l.Name]
		if !ok {
			return nil, &spec.ParamError{Param: "loras", Message: fmt.Sprintf("unknown LoRA %q: this model offers %s", l.Name, loraNames(avail))}
		}
		out = append(out, AppliedLoRA{LoRAFile: f, Scale: l.Scale})
	}
	return out, nil
}

func loraNames(avail map[string]LoRAFile) string {
	if len(avail) == 0 {
		return "none (add files to its " + LoRADir + "/ folder)"
	}
	names := make([]string, 0, len(avail))
	for n := range avail {
		names = append(names, strconv.Quote(n))
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// variantKey names a base model with LoRAs merged: the same key is the
// same weights, whatever the LoRAs are called.
func variantKey(base string, loras []AppliedLoRA) string {
	var b strings.Builder
	b.WriteString(base)
	for _, l := range loras {
		fmt.Fprintf(&b, "+%s@%s", l.Digest, strconv.FormatFloat(l.Scale, 'g', -1, 64))
	}
	return b.String()
}

// variantDigest fingerprints a variant's weights for cache keys: the base
// folder's digest and each LoRA's digest and scale, in order.
func variantDigest(baseDigest string, loras []AppliedLoRA) string {
	if baseDigest == "" {
		return ""
	}
	h := sha256.Sum256([]byte(variantKey(baseDigest, loras)))
	return "sha256:" + hex.EncodeToString(h[:])
}

// folderAliases is sdgate.json's "aliases": a list of names, or an object
// whose values are {} (a plain alias) or {"loras": [{"name", "scale"}]}
// (a model of its own: the folder with those LoRAs merged).
type folderAliases struct {
	plain []string
	lora  map[string][]spec.LoRA
}

type loraRef struct {
	Name  string   `json:"name"`
	Scale *float64 `json:"scale"` // omitted: 1
}

func (a *folderAliases) UnmarshalJSON(data []byte) error {
	if err := json.Unmarshal(data, &a.plain); err == nil {
		return nil
	}
	var obj map[string]*struct {
		LoRAs []loraRef `json:"loras"`
	}
	if err := json.Unmarshal(data, &obj); err != nil {
		return errors.New(`aliases: want a list of names, or an object of name -> {} or {"loras": [{"name": ..., "scale": ...}]}`)
	}
	a.plain, a.lora = nil, map[string][]spec.LoRA{}
	for name, v := range obj {
		if v == nil || len(v.LoRAs) == 0 {
			a.plain = append(a.plain, name)
			continue
		}
		for _, r := range v.LoRAs {
			s := 1.0
			if r.Scale != nil {
				s = *r.Scale
			}
			a.lora[name] = append(a.lora[name], spec.LoRA{Name: r.Name, Scale: s})
		}
	}
	sort.Strings(a.plain)
	return nil
}
