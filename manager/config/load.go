package config

// Loading a file.
//
// Stages, in order: line scan (positions.go: the line of every key path; refuses nesting the
// decoder would take quadratic time on) → TOML decode into a generic map (syntax errors, with
// their line) → walk the map against the schema, starting from DefaultConfig (unknown keys,
// wrong types, missing required keys) → check (the same checks as Validate) → clamp
// manager.cores to this machine (a warning). Every stage after the decode reports into one
// reporter, so the user sees every bad value at once.
//
// The walk decodes by hand rather than into tagged structs: toml.Decode stops at the first
// type mismatch, and MetaData.Undecoded names an unknown key without the array element it is
// in ("port.foo" for every [[port]]). The walk knows both, so each error names its element
// and line.

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Load reads and parses the configuration file at path; see Parse. Errors name the file as
// path. It is safe for concurrent use.
func Load(path string) (Config, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Parse parses a TOML configuration; name is the file name used in messages. Keys missing
// from [manager] keep their defaults; a file that gives [[port]], [[chain]], [[nf]] or
// [[flow]] replaces that whole default list. On success it returns the configuration and
// one-line warnings (such as CPUs in manager.cores that this machine lacks, which are dropped
// from Cores). On failure it returns a zero Config and every problem found, each an *Error
// naming file, line and key, joined with errors.Join. It never panics, and is safe for
// concurrent use.
func Parse(name string, data []byte) (Config, []string, error) {
	return parse(name, data, runtime.NumCPU())
}

// parse is Parse with the CPU count as a parameter, for tests.
func parse(name string, data []byte, ncpu int) (Config, []string, error) {
	lines, tooDeep := scanLines(data)
	if tooDeep > 0 {
		return Config{}, nil, errors.Join(&Error{File: name, Line: tooDeep,
			Msg: fmt.Sprintf("bad TOML: tables, arrays or dotted keys nested more than %d deep", maxNesting)})
	}
	raw, err := decodeTOML(data)
	if err != nil {
		e := &Error{File: name, Msg: err.Error()}
		var pe toml.ParseError
		if errors.As(err, &pe) {
			e.Line = pe.Position.Line
			e.Msg = "bad TOML: " + pe.Message
			if pe.LastKey != "" && !strings.Contains(pe.Message, "'"+pe.LastKey+"'") {
				e.Msg += " (last key " + pe.LastKey + ")"
			}
		}
		return Config{}, nil, errors.Join(e)
	}
	r := &reporter{file: name, lines: lines}
	cfg := DefaultConfig()
	d := &decoder{r: r}
	builtinChains := d.root(&cfg, raw)
	cfg.check(r, builtinChains)
	if len(r.errs) == 0 && cfg.Manager.Cores != "" {
		cpus, warning, err := ParseCPUList(cfg.Manager.Cores, ncpu)
		switch {
		case err != nil: // ncpu out of range; check has vetted the syntax
			r.errorf("manager.cores", "%v", err)
		case warning != "":
			r.warnf("manager.cores", "%s", warning)
			cfg.Manager.Cores = FormatCPUList(cpus)
		}
	}
	if err := r.err(); err != nil {
		return Config{}, nil, err
	}
	return cfg, r.warns, nil
}

// decodeTOML decodes data into a generic map. The decoder is third-party code: a panic in it
// on hostile input is turned into an error so a bad file cannot take the manager down.
func decodeTOML(data []byte) (raw map[string]any, err error) {
	defer func() {
		if p := recover(); p != nil {
			raw, err = nil, fmt.Errorf("bad TOML: decoder panicked: %v", p)
		}
	}()
	_, err = toml.Decode(string(data), &raw)
	return raw, err
}

// decoder walks a decoded TOML map into a Config, reporting what does not fit the schema.
type decoder struct {
	r *reporter
}

// setter decodes the value v of key into its field.
type setter func(key string, v any)

// root decodes the top level into cfg and reports whether cfg.Chains is still the built-in
// default while the file replaced the ports.
func (d *decoder) root(cfg *Config, raw map[string]any) (builtinChains bool) {
	gotPorts, gotChains := false, false
	d.fields("", raw, map[string]setter{
		"manager": func(key string, v any) {
			if m, ok := d.table(key, v); ok {
				d.manager(&cfg.Manager, key, m)
			}
		},
		"port": func(key string, v any) {
			if ts, ok := d.tables(key, v); ok {
				gotPorts = true
				cfg.Ports = make([]Port, len(ts))
				for i, t := range ts {
					cfg.Ports[i] = d.port(indexKey(key, i), t)
				}
			}
		},
		"chain": func(key string, v any) {
			if ts, ok := d.tables(key, v); ok {
				gotChains = true
				cfg.Chains = make([]Chain, len(ts))
				for i, t := range ts {
					cfg.Chains[i] = d.chain(indexKey(key, i), t)
				}
			}
		},
		"nf": func(key string, v any) {
			if ts, ok := d.tables(key, v); ok {
				cfg.NFs = make([]NF, len(ts))
				for i, t := range ts {
					cfg.NFs[i] = d.nf(indexKey(key, i), t)
				}
			}
		},
		"replication": func(key string, v any) {
			if t, ok := d.table(key, v); ok {
				d.replication(&cfg.Replication, key, t)
			}
		},
		"arbiter": func(key string, v any) {
			if t, ok := d.table(key, v); ok {
				d.arbiter(&cfg.Arbiter, key, t)
			}
		},
		"flow": func(key string, v any) {
			if ts, ok := d.tables(key, v); ok {
				cfg.Flows = make([]Flow, len(ts))
				for i, t := range ts {
					cfg.Flows[i] = d.flow(indexKey(key, i), t)
				}
			}
		},
	})
	return gotPorts && !gotChains
}

func (d *decoder) manager(m *Manager, key string, t map[string]any) {
	d.fields(key, t, map[string]setter{
		"name":             d.str(&m.Name),
		"region_dir":       d.str(&m.RegionDir),
		"control_socket":   d.str(&m.ControlSocket),
		"pool_slots":       d.integer(&m.PoolSlots),
		"data_bytes":       d.integer(&m.DataBytes),
		"jumbo":            d.boolean(&m.Jumbo),
		"ring_size":        d.integer(&m.RingSize),
		"burst":            d.integer(&m.Burst),
		"stats_interval_s": d.duration(&m.StatsInterval, time.Second),
		"stats_out":        d.str((*string)(&m.StatsOut)),
		"verbosity":        d.integer(&m.Verbosity),
		"ttl_s":            d.duration(&m.TTL, time.Second),
		"packet_limit_m":   d.integer64(&m.PacketLimitM),
		"shared_cpu":       d.boolean(&m.SharedCPU),
		"dead_nf_policy":   d.str((*string)(&m.DeadNFPolicy)),
		"dead_nf_grace_ms": d.duration(&m.DeadNFGrace, time.Millisecond),
		"hang_timeout_ms":  d.duration(&m.HangTimeout, time.Millisecond),
		"default_chain":    d.str(&m.DefaultChain),
		"cores":            d.str(&m.Cores),
		"num_services":     d.integer(&m.NumServices),
	})
}

func (d *decoder) port(key string, t map[string]any) Port {
	p := defaultPort()
	d.require(key, t, "[[port]]", "id")
	d.fields(key, t, map[string]setter{
		"id":        d.integer(&p.ID),
		"driver":    d.str((*string)(&p.Driver)),
		"iface":     d.str(&p.Iface),
		"path":      d.str(&p.Path),
		"out_path":  d.str(&p.OutPath),
		"rate_pps":  d.integer64(&p.RatePPS),
		"pkt_bytes": d.integer(&p.PktBytes),
		"loop":      d.boolean(&p.Loop),
	})
	return p
}

func (d *decoder) chain(key string, t map[string]any) Chain {
	ch := Chain{OutPort: 0}
	d.require(key, t, "[[chain]]", "name", "services")
	d.fields(key, t, map[string]setter{
		"name":     d.str(&ch.Name),
		"services": d.intList(&ch.Services),
		"out_port": d.integer(&ch.OutPort),
	})
	return ch
}

func (d *decoder) nf(key string, t map[string]any) NF {
	var nf NF
	d.require(key, t, "[[nf]]", "tag", "service", "command")
	d.fields(key, t, map[string]setter{
		"tag":      d.str(&nf.Tag),
		"service":  d.integer(&nf.Service),
		"instance": d.integer(&nf.Instance),
		"command":  d.strList(&nf.Command),
		"standby":  d.str((*string)(&nf.Standby)),
	})
	return nf
}

func (d *decoder) flow(key string, t map[string]any) Flow {
	var f Flow
	d.require(key, t, "[[flow]]", "chain")
	d.fields(key, t, map[string]setter{
		"chain":    d.str(&f.Chain),
		"src":      d.prefix(&f.Src),
		"dst":      d.prefix(&f.Dst),
		"src_port": d.ports(&f.SrcPorts),
		"dst_port": d.ports(&f.DstPorts),
		"proto":    d.proto(&f.Proto),
		"priority": d.integer(&f.Priority),
	})
	return f
}

// fields decodes each key of t with its setter, in sorted order so messages are stable, and
// reports keys with no setter as unknown.
func (d *decoder) fields(prefix string, t map[string]any, set map[string]setter) {
	names := make([]string, 0, len(t))
	for name := range t {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		key := joinKey(prefix, name)
		if f, ok := set[name]; ok {
			f(key, t[name])
			continue
		}
		msg := "unknown key"
		if s := suggest(name, set); s != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", s)
		}
		d.r.fail(key, "%s", msg)
	}
}

// require reports each of names missing from t; what names the table kind for the message.
func (d *decoder) require(key string, t map[string]any, what string, names ...string) {
	for _, name := range names {
		if _, ok := t[name]; !ok {
			d.r.fail(joinKey(key, name), "missing; every %s needs %s", what, name)
		}
	}
}

func (d *decoder) table(key string, v any) (map[string]any, bool) {
	t, ok := v.(map[string]any)
	if !ok {
		d.r.fail(key, "must be a table ([%s]), got %s", key, typeName(v))
	}
	return t, ok
}

// tables accepts both [[x]] sections and an inline array of inline tables. An element that is
// not a table is reported and comes back nil (decoded as empty, its errors suppressed), so
// the indices of the others still match the file.
func (d *decoder) tables(key string, v any) ([]map[string]any, bool) {
	switch v := v.(type) {
	case []map[string]any:
		return v, true
	case []any:
		ts := make([]map[string]any, len(v))
		for i, e := range v {
			t, isTable := e.(map[string]any)
			if !isTable {
				d.r.fail(indexKey(key, i), "must be a table, got %s", typeName(e))
			}
			ts[i] = t
		}
		return ts, true
	}
	d.r.fail(key, "must be an array of tables ([[%s]]), got %s", key, typeName(v))
	return nil, false
}

func (d *decoder) str(dst *string) setter {
	return func(key string, v any) {
		if s, ok := v.(string); ok {
			*dst = s
			return
		}
		d.r.fail(key, "must be a string, got %s", typeName(v))
	}
}

func (d *decoder) boolean(dst *bool) setter {
	return func(key string, v any) {
		if b, ok := v.(bool); ok {
			*dst = b
			return
		}
		d.r.fail(key, "must be true or false, got %s", typeName(v))
	}
}

func (d *decoder) integer64(dst *int64) setter {
	return func(key string, v any) {
		if n, ok := d.int64(key, v); ok {
			*dst = n
		}
	}
}

func (d *decoder) integer(dst *int) setter {
	return func(key string, v any) {
		if n, ok := d.int64(key, v); ok {
			if int64(int(n)) != n { // only on 32-bit platforms
				d.r.fail(key, "%d out of range", n)
				return
			}
			*dst = int(n)
		}
	}
}

// duration decodes an integer count of unit; the range check against overflow keeps huge
// values from wrapping into valid-looking durations.
func (d *decoder) duration(dst *time.Duration, unit time.Duration) setter {
	return func(key string, v any) {
		n, ok := d.int64(key, v)
		if !ok {
			return
		}
		if lim := math.MaxInt64 / int64(unit); n > lim || n < -lim {
			d.r.fail(key, "%d out of range 0..%d", n, lim)
			return
		}
		*dst = time.Duration(n) * unit
	}
}

func (d *decoder) int64(key string, v any) (int64, bool) {
	if n, ok := v.(int64); ok {
		return n, true
	}
	d.r.fail(key, "must be an integer, got %s", typeName(v))
	return 0, false
}

func (d *decoder) intList(dst *[]int) setter {
	return func(key string, v any) {
		a, ok := v.([]any)
		if !ok {
			d.r.fail(key, "must be an array of integers, got %s", typeName(v))
			return
		}
		out := make([]int, 0, len(a))
		for i, e := range a {
			n := 0
			d.integer(&n)(indexKey(key, i), e)
			out = append(out, n)
		}
		*dst = out
	}
}

func (d *decoder) strList(dst *[]string) setter {
	return func(key string, v any) {
		a, ok := v.([]any)
		if !ok {
			d.r.fail(key, "must be an array of strings, got %s", typeName(v))
			return
		}
		out := make([]string, 0, len(a))
		for i, e := range a {
			s := ""
			d.str(&s)(indexKey(key, i), e)
			out = append(out, s)
		}
		*dst = out
	}
}

// typeName names the TOML type of a decoded value, for messages.
func typeName(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("string %q", v)
	case int64:
		return fmt.Sprintf("integer %d", v)
	case float64:
		return fmt.Sprintf("float %v", v)
	case bool:
		return fmt.Sprintf("boolean %v", v)
	case map[string]any:
		return "table"
	case []map[string]any:
		return "array of tables"
	case []any:
		return "array"
	case nil:
		return "nothing"
	}
	return "date-time"
}

// suggest returns the known key closest to name, if it is a plausible typo (edit distance at
// most 1 for names up to 4 bytes, else 2; or a prefix either way), else "".
func suggest(name string, known map[string]setter) string {
	best, bestDist := "", 3
	if len(name) <= 4 {
		bestDist = 2
	}
	for k := range known {
		dist := editDistance(name, k)
		if dist < bestDist || dist == bestDist && k < best {
			best, bestDist = k, dist
		}
	}
	if best != "" {
		return best
	}
	if len(name) >= 3 {
		for k := range known {
			if strings.HasPrefix(k, name) || strings.HasPrefix(name, k) {
				if best == "" || k < best {
					best = k
				}
			}
		}
	}
	return best
}

// editDistance is the Levenshtein distance between short strings a and b.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 { // not a typo of a schema key; keep it cheap
		return math.MaxInt
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
