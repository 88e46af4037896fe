// Package loadgen is test and benchmark infrastructure: a load generator
// at a steady rate through a Gateway, with header profiles, recording for
// every request when it was sent, its status, which version answered and
// how long it took. Assertions on what it saw are statistical (Within).
package loadgen

import (
	"context"
	"io"
	"math"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/podrunner"
)

// Profile is a kind of client: a share of the requests carries its headers.
type Profile struct {
	Name    string
	Share   float64 // of all requests, 0..1; what the profiles leave is "default"
	Headers map[string]string
}

// Firefox is a browser in Korean: the header route of the examples.
var Firefox = Profile{Name: "firefox-ko", Headers: map[string]string{
	"User-Agent":      "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
	"Accept-Language": "ko",
}}

// Config is one run.
type Config struct {
	URL      string // through the Gateway, e.g. http://127.0.0.1:P/
	Host     string // the Host header (the route's hostname), if any
	Rate     float64
	Profiles []Profile
	Timeout  time.Duration // per request, default 5s
}

// Record is one request.
type Record struct {
	At      time.Time
	Profile string
	Status  int // 0: no response (connection refused or reset, timeout)
	Version string
	Latency time.Duration
}

// OK says whether the request got a non-5xx answer.
func (r Record) OK() bool { return r.Status > 0 && r.Status < 500 }

// Gen runs load and keeps the records.
type Gen struct {
	cfg    Config
	client *http.Client
	mu     sync.Mutex
	recs   []Record
}

// New returns a generator; start it with Run.
func New(cfg Config) *Gen {
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}
	return &Gen{cfg: cfg, client: &http.Client{Transport: tr, Timeout: cfg.Timeout}}
}

// Run sends requests at the configured rate until ctx is done, then waits
// for the ones in flight.
func (g *Gen) Run(ctx context.Context) {
	interval := time.Duration(float64(time.Second) / g.cfg.Rate)
	t := time.NewTicker(interval)
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p := g.profile(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.one(p)
		}()
	}
}

// profile picks request i's profile deterministically, spreading each
// profile's share evenly over the run: the fractional parts of i·φ (the
// golden ratio) fill [0,1) evenly, and each profile owns an interval of it
// as wide as its share.
func (g *Gen) profile(i int) Profile {
	u := math.Mod(float64(i)*0.6180339887498949, 1)
	acc := 0.0
	for _, p := range g.cfg.Profiles {
		acc += p.Share
		if u < acc {
			return p
		}
	}
	return Profile{Name: "default"}
}

func (g *Gen) one(p Profile) {
	rec := Record{At: time.Now(), Profile: p.Name}
	req, err := http.NewRequest(http.MethodGet, g.cfg.URL, nil)
	if err == nil {
		if g.cfg.Host != "" {
			req.Host = g.cfg.Host
		}
		for k, v := range p.Headers {
			req.Header.Set(k, v)
		}
		var resp *http.Response
		resp, err = g.client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			rec.Status = resp.StatusCode
			rec.Version = resp.Header.Get(podrunner.VersionHeader)
		}
	}
	rec.Latency = time.Since(rec.At)
	g.mu.Lock()
	g.recs = append(g.recs, rec)
	g.mu.Unlock()
}

// Records returns the requests completed so far, in the order sent.
func (g *Gen) Records() []Record {
	g.mu.Lock()
	out := append([]Record(nil), g.recs...)
	g.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// Between returns the records sent in [from, to).
func Between(recs []Record, from, to time.Time) []Record {
	var out []Record
	for _, r := range recs {
		if !r.At.Before(from) && r.At.Before(to) {
			out = append(out, r)
		}
	}
	return out
}

// Filter keeps the records f accepts.
func Filter(recs []Record, f func(Record) bool) []Record {
	var out []Record
	for _, r := range recs {
		if f(r) {
			out = append(out, r)
		}
	}
	return out
}

// Share is the fraction of recs answered by version (answered requests
// only) and how many were answered.
func Share(recs []Record, version string) (share float64, n int) {
	hit := 0
	for _, r := range recs {
		if r.Status == 0 {
			continue
		}
		n++
		if r.Version == version {
			hit++
		}
	}
	if n == 0 {
		return 0, 0
	}
	return float64(hit) / float64(n), n
}

// Failed counts the requests with no answer or a 5xx.
func Failed(recs []Record) int {
	n := 0
	for _, r := range recs {
		if !r.OK() {
			n++
		}
	}
	return n
}

// Z999 is the two-sided 99.9% normal quantile.
const Z999 = 3.2905

// Bound is the half-width of the 99.9% interval of a binomial share p over
// n requests (normal approximation with a continuity correction, and never
// below one request's worth, so small n stays honest).
func Bound(p float64, n int) float64 {
	if n == 0 {
		return 1
	}
	return Z999*math.Sqrt(p*(1-p)/float64(n)) + 1/(2*float64(n))
}

// Within reports whether an observed share over n requests is within the
// 99.9% binomial bound of the expected share, and the bound.
func Within(observed, expected float64, n int) (bool, float64) {
	b := Bound(expected, n)
	return math.Abs(observed-expected) <= b, b
}
