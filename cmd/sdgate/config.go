package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"

	"github.com/sdgate/sdgate/cache"
)

// Configuration precedence, one order for every flag:
//
//	command-line flag > SDGATE_<FLAG> environment > --config file > default
//
// The config file is JSON whose keys are flag names, e.g.
// {"addr": "0.0.0.0:8080", "queue-size": 32, "keep-alive": "10m"}.

// parseWithConfig parses args, fills unset flags from the environment, then
// from the config file named by the "config" flag (if fs has one).
func parseWithConfig(fs *flag.FlagSet, args []string, getenv env) error {
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	cf := fs.Lookup("config")
	if cf == nil || cf.Value.String() == "" {
		return nil
	}
	path := cf.Value.String()
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var values map[string]any
	if err := json.Unmarshal(data, &values); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, name := range keys {
		f := fs.Lookup(name)
		if f == nil || name == "config" {
			return fmt.Errorf("config file %s: unknown setting %q", path, name)
		}
		if set[name] || getenv(envName(name)) != "" {
			continue // flags and environment win
		}
		var s string
		switch v := values[name].(type) {
		case string:
			s = v
		case bool, float64:
			s = fmt.Sprint(v)
		default:
			return fmt.Errorf("config file %s: %q must be a string, number or boolean", path, name)
		}
		if err := fs.Set(name, s); err != nil {
			return fmt.Errorf("config file %s: %s: %w", path, name, err)
		}
	}
	return nil
}

// secretFlags are masked by --print-config.
var secretFlags = map[string]bool{"api-keys": true, "cache-redis": true, "url-store": true, "rate-limit-redis": true, "postgres": true}

// effectiveDefaults turn a flag's "0 = automatic" into the value in
// effect, so --print-config shows what serve will use.
var effectiveDefaults = map[string]func() string{
	"cache-bytes": func() string { return fmt.Sprintf("%d (1/8 of RAM, at most 8 GiB)", cache.DefaultMaxBytes()) },
	"cpu-threads": func() string { return fmt.Sprintf("%d (one per core)", runtime.NumCPU()) },
}

// printConfig writes, for every flag, the value in effect (secrets masked)
// and where it came from: flag, env, config or default.
func printConfig(w io.Writer, fs *flag.FlagSet, args []string, getenv env) {
	onCommandLine := map[string]bool{}
	for _, a := range args {
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "-") {
			name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
			onCommandLine[name] = true
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	fs.VisitAll(func(f *flag.Flag) {
		v := f.Value.String()
		if secretFlags[f.Name] && v != "" {
			v = maskSecret(v)
		}
		source := "default"
		switch {
		case onCommandLine[f.Name]:
			source = "flag"
		case getenv(envName(f.Name)) != "":
			source = "env " + envName(f.Name)
		case set[f.Name]:
			source = "config"
		}
		if auto, ok := effectiveDefaults[f.Name]; ok && v == "0" && source == "default" {
			v = auto()
		}
		fmt.Fprintf(w, "%-20s %s  [%s]\n", f.Name, v, source)
	})
}

func maskSecret(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		if len(p) > 8 {
			parts[i] = p[:5] + "***" + p[len(p)-3:]
		} else {
			parts[i] = "***"
		}
	}
	return strings.Join(parts, ",")
}
