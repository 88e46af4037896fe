// Package promtest runs a real Prometheus (Debian's package) for tests,
// scraping targets on loopback, and a small app that exposes
// http_requests_total by service, version and status code, whose error rate
// the test controls.
package promtest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server is a running Prometheus.
type Server struct {
	// URL is its HTTP API base, e.g. http://127.0.0.1:39090.
	URL string
	// Queries counts the queries it answered (from its own metrics).
	dir string
}

// Start runs Prometheus scraping targets (host:port) every 500ms until the
// test ends. It needs the Debian package prometheus (.ci/run installs it).
func Start(t testing.TB, targets ...string) *Server {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("prometheus not installed (apt-get install prometheus): %v", err)
	}
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = fmt.Sprintf("%q", tg)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 500ms
  evaluation_interval: 1s
scrape_configs:
- job_name: app
  static_configs:
  - targets: [%s]
`, strings.Join(quoted, ", "))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	log, _ := os.Create(filepath.Join(dir, "prometheus.log"))
	cmd := exec.Command(bin, "--config.file", filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path", filepath.Join(dir, "data"), "--web.listen-address", addr)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		_ = cmd.Wait()
		log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
			t.Logf("prometheus log (tail):\n%s", tail(string(b), 30))
		}
	})
	s := &Server{URL: "http://" + addr, dir: dir}
	// Ready, and every target scraped once: Prometheus applies scrape
	// targets with a throttle of about five seconds after it starts.
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/api/v1/query?query=" + url.QueryEscape("count(up == 1)"))
		if err == nil {
			var r struct {
				Data struct {
					Result []struct {
						Value []any `json:"value"`
					} `json:"result"`
				} `json:"data"`
			}
			json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			if len(r.Data.Result) == 1 && len(r.Data.Result[0].Value) == 2 && r.Data.Result[0].Value[1] == fmt.Sprint(len(targets)) {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus at %s did not scrape its %d targets within a minute", s.URL, len(targets))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// QueryCount returns how many instant queries Prometheus has answered, from
// its own prometheus_engine_query_duration_seconds_count.
func (s *Server) QueryCount(t testing.TB) int {
	t.Helper()
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	total := 0
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(line, `prometheus_api_remote_read_queries`) {
			continue
		}
		if strings.HasPrefix(line, `prometheus_http_requests_total{code="200",handler="/api/v1/query"}`) {
			var v float64
			fmt.Sscan(strings.Fields(line)[1], &v)
			total += int(v)
		}
	}
	return total
}

// App serves requests and counts them in http_requests_total{service,
// version, code}. Each service answers 500 to a share of requests that the
// test sets.
type App struct {
	// Addr is host:port of its /metrics.
	Addr     string
	requests *prometheus.CounterVec
	errPct   map[string]*atomic.Int64
}

// StartApp runs the app until the test ends, for the given services.
func StartApp(t testing.TB, services ...string) *App {
	t.Helper()
	reg := prometheus.NewRegistry()
	a := &App{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "http_requests_total", Help: "Requests served."}, []string{"service", "code"}),
		errPct:   map[string]*atomic.Int64{},
	}
	reg.MustRegister(a.requests)
	for _, s := range services {
		a.errPct[s] = &atomic.Int64{}
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	a.Addr = strings.TrimPrefix(srv.URL, "http://")
	return a
}

// SetErrorPercent makes the service fail that share of requests.
func (a *App) SetErrorPercent(service string, pct int) { a.errPct[service].Store(int64(pct)) }

// Serve counts n requests for service, failing the configured share.
func (a *App) Serve(service string, n int) {
	fail := int(a.errPct[service].Load()) * n / 100
	a.requests.WithLabelValues(service, "500").Add(float64(fail))
	a.requests.WithLabelValues(service, "200").Add(float64(n - fail))
}
