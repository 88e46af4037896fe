package gitserver

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// HTTPServer serves every repository under Root over smart HTTP with basic
// auth, as git http-backend behind a web server does.
type HTTPServer struct {
	Root     string
	User     string
	Password string
	// URL is the server's base URL, without credentials.
	URL string

	srv *httptest.Server
	// PackBytes counts the response bytes of git-upload-pack POSTs: the
	// packs clients download.
	PackBytes atomic.Int64
	// Requests counts requests by "METHOD path-suffix".
	mu       sync.Mutex
	requests map[string]int
	down     atomic.Bool
}

// Backend is git http-backend serving the bare repositories under root,
// as a CGI handler; env is added to its environment (REMOTE_USER=name
// enables pushes for every request).
func Backend(root string, env ...string) (*cgi.Handler, error) {
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		return nil, fmt.Errorf("git --exec-path: %w", err)
	}
	return &cgi.Handler{
		Path:   strings.TrimSpace(string(execPath)) + "/git-http-backend",
		Env:    append([]string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}, env...),
		Stderr: io.Discard,
	}, nil
}

// StartHTTP serves root on a loopback port until the test ends.
func StartHTTP(t testing.TB, root, user, password string) *HTTPServer {
	t.Helper()
	backend, err := Backend(root)
	if err != nil {
		t.Fatal(err)
	}
	s := &HTTPServer{Root: root, User: user, Password: password, requests: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.down.Load() {
			http.Error(w, "down for the test", http.StatusServiceUnavailable)
			return
		}
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		key := r.Method + " " + suffix(r.URL.Path)
		s.mu.Lock()
		s.requests[key]++
		s.mu.Unlock()
		r.Header.Set("REMOTE_USER", u)
		if strings.HasSuffix(r.URL.Path, "/git-upload-pack") && r.Method == http.MethodPost {
			cw := &countingWriter{ResponseWriter: w}
			backend.ServeHTTP(cw, withRemoteUser(r, u))
			s.PackBytes.Add(cw.n)
			return
		}
		backend.ServeHTTP(w, withRemoteUser(r, u))
	}))
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// withRemoteUser passes the authenticated user to the CGI, which enables
// pushes (receive-pack) for it.
func withRemoteUser(r *http.Request, user string) *http.Request {
	r2 := r.Clone(r.Context())
	r2.Header.Set("Remote-User", user)
	return r2
}

func suffix(p string) string {
	for _, s := range []string{"/info/refs", "/git-upload-pack", "/git-receive-pack"} {
		if strings.HasSuffix(p, s) {
			return s
		}
	}
	return p
}

// RepoURL is the URL of a repository, without credentials.
func (s *HTTPServer) RepoURL(name string) string { return s.URL + "/" + name }

// Requests returns the request counts so far and resets them.
func (s *HTTPServer) Requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.requests
	s.requests = map[string]int{}
	return out
}

// SetDown makes the server answer 503 to everything (an outage), or not.
func (s *HTTPServer) SetDown(down bool) { s.down.Store(down) }

type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}
