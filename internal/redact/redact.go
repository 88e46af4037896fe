// Package redact makes URLs and messages safe to show: every log line,
// Event, status file, commit and metric label sluice writes that could
// carry a credential goes through it.
package redact

import (
	"net/url"
	"strings"
)

// Mask replaces what was hidden.
const Mask = "REDACTED"

// URL returns raw without its secrets: the password of the user info is
// masked and the query (tokens are often there) dropped. A string that
// does not parse as a URL is returned masked whole if it holds user info.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.LastIndex(raw, "@"); i > 0 && strings.Contains(raw[:i], ":") && strings.Contains(raw, "://") {
			return Mask
		}
		return raw
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), Mask)
		}
	}
	if u.RawQuery != "" {
		u.RawQuery = Mask
	}
	u.Fragment = ""
	return u.String()
}

// Endpoint is a webhook URL whose path may be the secret (Slack's
// incoming webhooks are): only its scheme and host are shown.
func Endpoint(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return Mask
	}
	s := u.Scheme + "://" + u.Host
	if u.Path != "" && u.Path != "/" {
		s += "/" + Mask
	}
	return s
}

// String masks every secret (of three characters or more) found in s.
func String(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) >= 3 {
			s = strings.ReplaceAll(s, sec, Mask)
		}
	}
	return s
}
