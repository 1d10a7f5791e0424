package report

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// IgnoreRule suppresses known findings. A finding matches when every set
// field matches; see ParseIgnore for the file syntax and docs/findings.md.
type IgnoreRule struct {
	// Kind is the finding's kind; empty matches any kind.
	Kind Kind
	// Subject is a glob the whole subject must match.
	Subject string
	// Funcs are globs that must each match the function of some frame of the
	// finding's stack (any frame, runtime and tracker frames included).
	Funcs []string
	// Owner is a glob the owner must match; empty matches any owner.
	Owner string
	// Signature, if set, must equal the finding's signature.
	Signature string
	// Line is the rule's line in its file, for messages.
	Line int
}

// Match reports whether r suppresses f.
func (r IgnoreRule) Match(f Finding) bool {
	if r.Kind != "" && r.Kind != f.Kind {
		return false
	}
	if r.Signature != "" && r.Signature != f.signature() {
		return false
	}
	if !matchGlob(r.Subject, f.Subject) {
		return false
	}
	if r.Owner != "" && !matchGlob(r.Owner, f.Owner) {
		return false
	}
	for _, fn := range r.Funcs {
		if !slices.ContainsFunc(f.Evidence.Stack, func(fr Frame) bool { return matchGlob(fn, fr.Func) }) {
			return false
		}
	}
	return true
}

// Suppress splits findings into those no rule matches and those some rule
// matches. fs is not modified.
func Suppress(fs []Finding, rules []IgnoreRule) (kept, suppressed []Finding) {
	for _, f := range fs {
		if slices.ContainsFunc(rules, func(r IgnoreRule) bool { return r.Match(f) }) {
			suppressed = append(suppressed, f)
		} else {
			kept = append(kept, f)
		}
	}
	return kept, suppressed
}

// ParseIgnore reads ignore rules, one per line:
//
//	# a comment: a line whose first non-blank character is #
//	KIND SUBJECT [func=GLOB]... [owner=GLOB] [signature=HEX]
//
// KIND is a finding kind or * for any. SUBJECT and the values are globs in
// which * matches any run of characters (slashes included), ? matches one
// character and \ makes the next character literal. A field containing spaces
// is written as a Go double-quoted string, e.g. "socket 10.0.0.*:6379" or
// func="pkg.(*T).M". Blank lines are skipped. name labels errors, which read
// "name:LINE: ...".
func ParseIgnore(r io.Reader, name string) ([]IgnoreRule, error) {
	var rules []IgnoreRule
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		rule, err := parseIgnoreLine(text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		rule.Line = line
		rules = append(rules, rule)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: reading ignore rules: %w", name, line+1, err)
	}
	return rules, nil
}

// ReadIgnoreFile reads the ignore rules in the file name (see ParseIgnore);
// an empty name means no rules.
func ReadIgnoreFile(name string) ([]IgnoreRule, error) {
	if name == "" {
		return nil, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("reading ignore file: %w", err)
	}
	defer f.Close()
	return ParseIgnore(f, name)
}

const ignoreSyntax = "want KIND SUBJECT [func=GLOB]... [owner=GLOB] [signature=HEX]"

func parseIgnoreLine(text string) (IgnoreRule, error) {
	if !utf8.ValidString(text) {
		return IgnoreRule{}, errors.New("rule is not valid UTF-8")
	}
	fields, err := splitFields(text)
	if err != nil {
		return IgnoreRule{}, err
	}
	if len(fields) < 2 {
		return IgnoreRule{}, fmt.Errorf("rule %q has no subject: %s", text, ignoreSyntax)
	}
	var r IgnoreRule
	switch k := Kind(fields[0]); {
	case k == "*":
	case k.known():
		r.Kind = k
	default:
		return IgnoreRule{}, fmt.Errorf("unknown kind %q (want * or one of %s)", fields[0], kindList())
	}
	r.Subject = fields[1]
	if err := checkGlob(r.Subject); err != nil {
		return IgnoreRule{}, fmt.Errorf("subject %q: %w", r.Subject, err)
	}
	for _, f := range fields[2:] {
		key, value, ok := strings.Cut(f, "=")
		if !ok {
			return IgnoreRule{}, fmt.Errorf("unexpected %q after the subject: %s", f, ignoreSyntax)
		}
		if value == "" {
			return IgnoreRule{}, fmt.Errorf("%s= needs a value", key)
		}
		switch key {
		case "func":
			r.Funcs = append(r.Funcs, value)
		case "owner":
			if r.Owner != "" {
				return IgnoreRule{}, errors.New("owner= given twice")
			}
			r.Owner = value
		case "signature":
			if r.Signature != "" {
				return IgnoreRule{}, errors.New("signature= given twice")
			}
			r.Signature = value
			continue
		default:
			return IgnoreRule{}, fmt.Errorf("unknown option %q (want func=, owner= or signature=)", key)
		}
		if err := checkGlob(value); err != nil {
			return IgnoreRule{}, fmt.Errorf("%s=%q: %w", key, value, err)
		}
	}
	return r, nil
}

// splitFields splits a rule into blank-separated fields. A field may contain
// (or be) a Go double-quoted string, which is unquoted: func="a b" is the
// field `func=a b`.
func splitFields(s string) ([]string, error) {
	var fields []string
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return fields, nil
		}
		end := strings.IndexAny(s, " \t\"")
		if end < 0 {
			return append(fields, s), nil
		}
		field := s[:end]
		s = s[end:]
		if s[0] == '"' {
			quoted, err := strconv.QuotedPrefix(s)
			if err != nil {
				return nil, fmt.Errorf("bad quoted string at %.20q", s)
			}
			unquoted, _ := strconv.Unquote(quoted)
			field += unquoted
			s = s[len(quoted):]
			if s != "" && s[0] != ' ' && s[0] != '\t' {
				return nil, fmt.Errorf("want a blank after the quoted string %s", quoted)
			}
		}
		fields = append(fields, field)
	}
}

func kindList() string {
	names := make([]string, 0, len(Kinds()))
	for _, k := range Kinds() {
		names = append(names, string(k))
	}
	return strings.Join(names, ", ")
}

// checkGlob reports a glob that cannot match as written: one ending in an
// unfinished escape.
func checkGlob(pattern string) error {
	for i := 0; i < len(pattern); i++ {
		if pattern[i] == '\\' {
			if i == len(pattern)-1 {
				return errors.New(`glob ends with a lone \`)
			}
			i++
		}
	}
	return nil
}

// matchGlob reports whether name matches pattern entirely: * matches any run of
// characters, ? one character, \c the character c. It backtracks only to the
// last *, so it runs in O(len(pattern) * len(name)).
func matchGlob(pattern, name string) bool {
	p, n := 0, 0
	starP, starN := -1, -1
	for n < len(name) {
		if p < len(pattern) {
			switch c := pattern[p]; c {
			case '*':
				starP, starN = p, n
				p++
				continue
			case '?':
				_, size := utf8.DecodeRuneInString(name[n:])
				p++
				n += size
				continue
			case '\\':
				if p+1 < len(pattern) && pattern[p+1] == name[n] {
					p += 2
					n++
					continue
				}
			default:
				if c == name[n] {
					p++
					n++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		// Let the last * swallow one more character and retry.
		_, size := utf8.DecodeRuneInString(name[starN:])
		starN += size
		p, n = starP+1, starN
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
