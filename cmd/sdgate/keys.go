package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sdgate/sdgate/auth"
)

const keysUsage = `usage: sdgate keys <command> [flags]
  create --name NAME [--rpm N] [--ipm N] [--images-per-day N] [--quota N]
         [--models a,b] [--admin] [--expires 720h|30d|2026-12-31|RFC3339]
                      make a key; only the key is printed on stdout, once
  list                list keys (never their secrets)
  revoke ID           revoke a key at once
  usage [ID] [--since 2026-11-01|24h|30d]
                      usage per day, of one key or of all
Every command takes --data DIR (default ./data, or SDGATE_DATA), or
--postgres DSN (or SDGATE_POSTGRES) for the key store gateways share.
Keys in SDGATE_API_KEYS ([NAME:]SECRET[:admin], comma-separated) are listed too.`

func runKeys(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, keysUsage)
		return errors.New("keys: no command given")
	}
	switch args[0] {
	case "create":
		return keysCreate(ctx, args[1:], getenv, stdout, stderr)
	case "list":
		return keysList(ctx, args[1:], getenv, stdout, stderr)
	case "revoke":
		return keysRevoke(ctx, args[1:], getenv, stdout, stderr)
	case "usage":
		return keysUsageCmd(ctx, args[1:], getenv, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stderr, keysUsage)
		return nil
	}
	fmt.Fprintln(stderr, keysUsage)
	return fmt.Errorf("keys: unknown command %q", args[0])
}

// storeFlags name the key store: the SQLite file in --data, or the
// PostgreSQL database --postgres names (it wins when given).
type storeFlags struct {
	data, postgres *string
}

// newKeysFlags makes a command's flag set with the store flags every keys
// command shares.
func newKeysFlags(name string, stderr io.Writer) (*flag.FlagSet, storeFlags) {
	fs := flag.NewFlagSet("keys "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "./data", "data directory holding "+auth.DBName)
	pg := fs.String("postgres", "", "PostgreSQL key store instead of --data: postgres://user@host/db or key=value DSN")
	return fs, storeFlags{data: data, postgres: pg}
}

// where names the store in messages, without the DSN's password.
func (sf storeFlags) where() string {
	if *sf.postgres != "" {
		return "the PostgreSQL key store"
	}
	return *sf.data
}

// open opens the store. Without create, a SQLite file must exist already:
// a mistyped --data must not leave a new empty store. PostgreSQL's schema
// is brought up to date either way (the database itself must exist).
func (sf storeFlags) open(ctx context.Context, create bool) (auth.Store, error) {
	switch {
	case *sf.postgres != "":
		return auth.OpenPostgres(ctx, *sf.postgres)
	case create:
		return auth.OpenDataDir(ctx, *sf.data)
	}
	return openExistingStore(ctx, *sf.data)
}

// exists reports whether there is a store to read: always for PostgreSQL.
func (sf storeFlags) exists() bool {
	if *sf.postgres != "" {
		return true
	}
	_, err := os.Stat(filepath.Join(*sf.data, auth.DBName))
	return err == nil
}

// parseKeysFlags parses flags and up to maxArgs positional arguments in any
// order ("revoke ID --data d" and "revoke --data d ID"). Only --data and
// --postgres are read from the environment: SDGATE_MODELS names serve's models directory and
// must not become create's allowed models, nor SDGATE_NAME a key's name.
func parseKeysFlags(fs *flag.FlagSet, args []string, getenv env, maxArgs int) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(positional) > maxArgs {
		return nil, fmt.Errorf("%s: unexpected argument %q", fs.Name(), positional[maxArgs])
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, name := range []string{"data", "postgres"} {
		if v := getenv(envName(name)); v != "" && !given[name] {
			if err := fs.Set(name, v); err != nil {
				return nil, err
			}
		}
	}
	return positional, nil
}

// openExistingStore opens the key store for commands that only read or
// change existing keys: a mistyped --data must not leave a new empty store.
func openExistingStore(ctx context.Context, dir string) (*auth.SQLiteStore, error) {
	path := filepath.Join(dir, auth.DBName)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no key store at %s (create a key with: sdgate keys create --name NAME): %w", path, err)
	}
	return auth.OpenSQLite(ctx, path)
}

func keysCreate(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs, sf := newKeysFlags("create", stderr)
	var (
		name    = fs.String("name", "", "what the key is for (required)")
		rpm     = fs.Int("rpm", 0, "requests per minute (0: unlimited)")
		ipm     = fs.Int("ipm", 0, "images per minute (0: unlimited)")
		perDay  = fs.Int("images-per-day", 0, "images per UTC day (0: unlimited)")
		quota   = fs.Int64("quota", 0, "images over the key's lifetime (0: unlimited)")
		models  = fs.String("models", "", "comma-separated models (or patterns like sd15-*) the key may use (empty: all)")
		admin   = fs.Bool("admin", false, "may manage keys and read every key's usage over HTTP")
		expires = fs.String("expires", "", "expiry: a duration from now (720h, 30d), a date (2026-12-31, UTC) or RFC3339 time")
	)
	if _, err := parseKeysFlags(fs, args, getenv, 0); err != nil {
		return err
	}
	if *name == "" {
		return errors.New("keys create: --name is required")
	}
	now := time.Now()
	spec := auth.KeySpec{
		Name:   *name,
		Limits: auth.Limits{RequestsPerMinute: *rpm, ImagesPerMinute: *ipm, ImagesPerDay: *perDay, ImageQuota: *quota},
		Models: splitList(*models),
		Admin:  *admin,
	}
	if *expires != "" {
		t, err := parseWhen(*expires, now, +1)
		if err != nil {
			return fmt.Errorf("keys create: --expires: %w", err)
		}
		spec.ExpiresAt = t
	}
	store, err := sf.open(ctx, true)
	if err != nil {
		return fmt.Errorf("keys create: %w", err)
	}
	defer store.Close()
	secret, k, err := auth.CreateKey(ctx, store, spec)
	if err != nil {
		return fmt.Errorf("keys create: %w", err)
	}
	fmt.Fprintln(stdout, secret)
	fmt.Fprintf(stderr, "created %s (%s)", k.ID, k.Name)
	if !k.ExpiresAt.IsZero() {
		fmt.Fprintf(stderr, ", expires %s", k.ExpiresAt.Format(time.RFC3339))
	}
	fmt.Fprintln(stderr, ". The key above is shown only now: store it somewhere safe.")
	return nil
}

func keysList(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs, sf := newKeysFlags("list", stderr)
	if _, err := parseKeysFlags(fs, args, getenv, 0); err != nil {
		return err
	}
	keys, err := envKeys(getenv)
	if err != nil {
		return fmt.Errorf("keys list: %w", err)
	}
	if sf.exists() {
		store, err := sf.open(ctx, false)
		if err != nil {
			return fmt.Errorf("keys list: %w", err)
		}
		defer store.Close()
		stored, err := store.ListKeys(ctx)
		if err != nil {
			return fmt.Errorf("keys list: %w", err)
		}
		keys = append(keys, stored...)
	}
	if len(keys) == 0 {
		fmt.Fprintf(stderr, "no keys in %s (create one with: sdgate keys create --name NAME)\n", sf.where())
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tKEY\tCREATED\tLAST USED\tEXPIRES\tREVOKED\tADMIN\tLIMITS\tMODELS")
	now := time.Now()
	for _, k := range keys {
		created := formatTime(k.CreatedAt)
		if k.Static {
			created = "SDGATE_API_KEYS"
		}
		expires := formatTime(k.ExpiresAt)
		if k.Expired(now) {
			expires += " (expired)"
		}
		models := strings.Join(k.Models, ",")
		if models == "" {
			models = "all"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Hint, created,
			formatTime(k.LastUsedAt), expires, formatTime(k.RevokedAt), yesNo(k.Admin),
			formatLimits(k.Limits), models)
	}
	return tw.Flush()
}

func keysRevoke(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs, sf := newKeysFlags("revoke", stderr)
	pos, err := parseKeysFlags(fs, args, getenv, 1)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return errors.New("keys revoke: which key? (keys revoke ID; see keys list)")
	}
	id := pos[0]
	// A malformed SDGATE_API_KEYS must not stand in the way of revoking a
	// stored key in a hurry: it only serves to explain static ids here.
	if static, err := envKeys(getenv); err == nil {
		for _, k := range static {
			if k.ID == id {
				return fmt.Errorf("keys revoke %s: %w: remove it from SDGATE_API_KEYS", id, auth.ErrStaticKey)
			}
		}
	}
	store, err := sf.open(ctx, false)
	if err != nil {
		return fmt.Errorf("keys revoke: %w", err)
	}
	defer store.Close()
	k, err := store.Key(ctx, id)
	if err != nil {
		return fmt.Errorf("keys revoke %s: %w", id, err)
	}
	if err := store.RevokeKey(ctx, id, time.Now()); err != nil {
		return fmt.Errorf("keys revoke: %w", err)
	}
	fmt.Fprintf(stdout, "revoked %s (%s)\n", k.ID, k.Name)
	return nil
}

func keysUsageCmd(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs, sf := newKeysFlags("usage", stderr)
	since := fs.String("since", "30d", "from: a date (2026-11-01, UTC), an RFC3339 time or an age (24h, 30d)")
	pos, err := parseKeysFlags(fs, args, getenv, 1)
	if err != nil {
		return err
	}
	from, err := parseWhen(*since, time.Now(), -1)
	if err != nil {
		return fmt.Errorf("keys usage: --since: %w", err)
	}
	store, err := sf.open(ctx, false)
	if err != nil {
		return fmt.Errorf("keys usage: %w", err)
	}
	defer store.Close()
	names, err := keyNames(ctx, store, getenv)
	if err != nil {
		return fmt.Errorf("keys usage: %w", err)
	}
	id := ""
	if len(pos) == 1 {
		id = pos[0]
		if _, ok := names[id]; !ok {
			return fmt.Errorf("keys usage %s: %w", id, auth.ErrKeyNotFound)
		}
	}
	days, err := store.UsageByDay(ctx, id, from)
	if err != nil {
		return fmt.Errorf("keys usage: %w", err)
	}
	if len(days) == 0 {
		fmt.Fprintf(stderr, "no usage since %s\n", from.UTC().Format(time.RFC3339))
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "DAY\tKEY\tNAME\tREQUESTS\tFAILED\tCACHED\tIMAGES\tMEGAPIXELS\tSTEPS\tGPU SECONDS\t")
	var total auth.DayUsage
	for _, d := range days {
		name := names[d.KeyID]
		if d.KeyID == "" {
			name = "(no auth)"
		}
		writeUsageRow(tw, d.Day, d.KeyID, name, d)
		total.Requests += d.Requests
		total.Failed += d.Failed
		total.Cached += d.Cached
		total.Images += d.Images
		total.Pixels += d.Pixels
		total.Steps += d.Steps
		total.GPUSeconds += d.GPUSeconds
	}
	writeUsageRow(tw, "total", "", "", total)
	return tw.Flush()
}

func writeUsageRow(w io.Writer, day, id, name string, d auth.DayUsage) {
	fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%.1f\t%d\t%.1f\t\n", day, id, name,
		d.Requests, d.Failed, d.Cached, d.Images, float64(d.Pixels)/1e6, d.Steps, d.GPUSeconds)
}

// keyNames maps every known key id, stored or static, to its name.
func keyNames(ctx context.Context, store auth.Store, getenv env) (map[string]string, error) {
	keys, err := store.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	static, err := envKeys(getenv)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	for _, k := range append(static, keys...) {
		names[k.ID] = k.Name
	}
	return names, nil
}

// envKeys are the keys SDGATE_API_KEYS names, as serve would add them.
func envKeys(getenv env) ([]auth.Key, error) {
	parsed, err := auth.ParseStaticKeys(getenv("SDGATE_API_KEYS"), time.Now())
	if err != nil {
		return nil, err
	}
	keys := make([]auth.Key, len(parsed))
	for i, k := range parsed {
		keys[i] = *k
	}
	return keys, nil
}

// parseWhen reads an RFC3339 time, a UTC date, or a duration (Go syntax, or
// whole days as "30d") counted from now in direction sign (+1 later, -1 earlier).
func parseWhen(s string, now time.Time, sign int) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return time.Time{}, fmt.Errorf("%q: want a date, an RFC3339 time or a duration such as 24h or 30d", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil || d < 0 {
			return time.Time{}, fmt.Errorf("%q: want a date, an RFC3339 time or a duration such as 24h or 30d", s)
		}
	}
	return now.Add(time.Duration(sign) * d), nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

func formatLimits(l auth.Limits) string {
	var parts []string
	add := func(name string, v int64) {
		if v > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", name, v))
		}
	}
	add("rpm", int64(l.RequestsPerMinute))
	add("ipm", int64(l.ImagesPerMinute))
	add("per-day", int64(l.ImagesPerDay))
	add("quota", l.ImageQuota)
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
