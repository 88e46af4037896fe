package dashboard

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

//go:embed templates/*.html
var templateFiles embed.FS

// Server serves the pages: GET {Prefix}/ (every release),
// {Prefix}/release/<ns>/<name>, {Prefix}/release/<ns>/<name>/timeline.svg,
// {Prefix}/commit/<sha> and {Prefix}/events (server-sent events, one per
// new status commit). Read-only: nothing it serves writes.
type Server struct {
	Repo *Repo
	// Prefix is the path the pages live under: "" for sluice dashboard,
	// "/ui" in the agent.
	Prefix string
	// Poll is how often /events looks for a new status commit (2 s).
	Poll time.Duration
	// Now is the clock (ages, the chart's right end).
	Now func() time.Time

	mu    sync.Mutex
	cache *Snapshot
	tmpl  *template.Template
	once  sync.Once
}

// Handler is the pages' mux.
func (s *Server) Handler() http.Handler {
	s.once.Do(s.init)
	mux := http.NewServeMux()
	p := s.Prefix
	mux.HandleFunc("GET "+p+"/{$}", s.overview)
	mux.HandleFunc("GET "+p+"/release/{ns}/{name}", s.release)
	mux.HandleFunc("GET "+p+"/release/{ns}/{name}/timeline.svg", s.timeline)
	mux.HandleFunc("GET "+p+"/commit/{sha}", s.commit)
	mux.HandleFunc("GET "+p+"/events", s.events)
	return mux
}

func (s *Server) init() {
	if s.Poll <= 0 {
		s.Poll = 2 * time.Second
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	s.tmpl = template.Must(template.New("").Funcs(template.FuncMap{
		"short":  short,
		"ago":    func(t time.Time) string { return ago(s.Now().Sub(t)) },
		"utc":    func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"prefix": func() string { return s.Prefix },
		"step":   stepText,
		"phase":  phaseSymbol,
		"sub":    func(a, b int32) int32 { return a - b },
		"eventStep": func(e Event) string {
			if terminal(e.Phase) {
				return "-"
			}
			return fmt.Sprint(e.Step + 1)
		},
		"reverse": func(es []Event) []Event {
			out := make([]Event, len(es))
			for i, e := range es {
				out[len(es)-1-i] = e
			}
			return out
		},
	}).ParseFS(templateFiles, "templates/*.html"))
}

// snapshot is the pages' data at the status branch's head (loaded once
// per head).
// The repository is read by one request at a time: go-git's storage is
// not safe for a read alongside a fetch.
func (s *Server) snapshot(ctx context.Context) (*Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	head, err := s.Repo.Head(ctx)
	if err != nil {
		return nil, err
	}
	if s.cache != nil && s.cache.Commit == head.String() {
		return s.cache, nil
	}
	snap, err := s.Repo.Load(ctx, head)
	if err != nil {
		return nil, err
	}
	s.cache = snap
	return snap, nil
}

// page is what every template gets.
type page struct {
	Title string
	// Snap is the one status branch the page shows (nil on the page of
	// several clusters).
	Snap     *Snapshot
	Tables   []tableView
	Release  *Release
	Chart    template.HTML
	Commit   *commitView
	Commands []string
}

func (s *Server) render(w http.ResponseWriter, name string, p page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; img-src 'self'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if err := s.tmpl.ExecuteTemplate(w, name, p); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

func (s *Server) fail(w http.ResponseWriter, err error) {
	http.Error(w, "reading the status branch: "+err.Error(), http.StatusBadGateway)
}

func (s *Server) overview(w http.ResponseWriter, r *http.Request) {
	snap, err := s.snapshot(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	s.render(w, "overview.html", page{Title: "sluice releases", Snap: snap, Tables: []tableView{{Prefix: s.Prefix, Releases: snap.Releases}}})
}

// tableView is one status branch's releases on an overview.
type tableView struct {
	// Cluster names it on the page of several clusters.
	Cluster, Prefix string
	Releases        []*Release
}

// Clusters serves several clusters' pages, each under /<cluster>/ (their
// Servers' Prefix), and at / every cluster's releases, one table each.
func Clusters(names []string, servers []*Server) http.Handler {
	mux := http.NewServeMux()
	for _, s := range servers {
		mux.Handle(s.Prefix+"/", s.Handler())
	}
	index := &Server{Now: servers[0].Now}
	index.once.Do(index.init)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		p := page{Title: "sluice releases: " + strings.Join(names, ", ")}
		for i, s := range servers {
			snap, err := s.snapshot(r.Context())
			if err != nil {
				s.fail(w, fmt.Errorf("cluster %s: %w", names[i], err))
				return
			}
			p.Tables = append(p.Tables, tableView{Cluster: names[i], Prefix: s.Prefix, Releases: snap.Releases})
		}
		index.render(w, "overview.html", p)
	})
	return mux
}

// lookup is the release the path names, or a 404.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) (*Snapshot, *Release, bool) {
	snap, err := s.snapshot(r.Context())
	if err != nil {
		s.fail(w, err)
		return nil, nil, false
	}
	rel := snap.Find(r.PathValue("ns") + "/" + r.PathValue("name"))
	if rel == nil {
		http.Error(w, "no release "+r.PathValue("ns")+"/"+r.PathValue("name")+" on the status branch", http.StatusNotFound)
		return nil, nil, false
	}
	return snap, rel, true
}

// ChartOf is the release's timeline: its last rollout, up to now while
// it is in flight.
func ChartOf(rel *Release, now time.Time) *Chart {
	end := time.Time{}
	if !terminal(string(rel.Status.Phase)) {
		end = now
	}
	return NewChart("canary weight of "+rel.ID+", last rollout", LastRollout(rel.Events), end)
}

func (s *Server) release(w http.ResponseWriter, r *http.Request) {
	snap, rel, ok := s.lookup(w, r)
	if !ok {
		return
	}
	svg, err := ChartOf(rel, s.Now()).SVG(false)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.render(w, "release.html", page{Title: rel.ID, Snap: snap, Release: rel, Chart: template.HTML(svg), Commands: commands(rel)})
}

func (s *Server) timeline(w http.ResponseWriter, r *http.Request) {
	_, rel, ok := s.lookup(w, r)
	if !ok {
		return
	}
	svg, err := ChartOf(rel, s.Now()).SVG(true)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Write(svg)
}

// commitView is one status commit, whole.
type commitView struct {
	Hash, Author, Message string
	Time                  time.Time
}

func (s *Server) commit(w http.ResponseWriter, r *http.Request) {
	snap, err := s.snapshot(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	sha := r.PathValue("sha")
	if len(sha) != 40 || strings.Trim(sha, "0123456789abcdef") != "" {
		http.Error(w, "not a commit hash", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	c, err := s.Repo.Status.CommitObject(plumbing.NewHash(sha))
	s.mu.Unlock()
	if err != nil {
		http.Error(w, "no commit "+sha+" on the status branch", http.StatusNotFound)
		return
	}
	s.render(w, "commit.html", page{Title: "commit " + short(sha), Snap: snap,
		Commit: &commitView{Hash: sha, Author: c.Author.Name, Message: c.Message, Time: c.Committer.When}})
}

// events sends "status" with the head's hash whenever a new status commit
// lands, so an open page refreshes itself.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	last := ""
	tick := time.NewTicker(s.Poll)
	defer tick.Stop()
	fmt.Fprintf(w, "retry: %d\n\n", s.Poll.Milliseconds())
	for {
		s.mu.Lock()
		head, err := s.Repo.Head(r.Context())
		s.mu.Unlock()
		if err == nil && head.String() != last {
			last = head.String()
			fmt.Fprintf(w, "event: status\ndata: %s\n\n", last)
			flusher.Flush()
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

// commands are the CLI commands that change the release, to copy: the
// pages never write.
func commands(rel *Release) []string {
	st := rel.Status
	if st.Canary == nil {
		return []string{"sluice rollback " + rel.ID + " --push"}
	}
	var out []string
	if st.Phase == "Paused" && int(st.Step) < len(rel.Steps) {
		if gate, ok := strings.CutPrefix(rel.Steps[st.Step], "pause{gate: "); ok {
			out = append(out, fmt.Sprintf("sluice approve %s %s --push", rel.ID, strings.TrimSuffix(gate, "}")))
		}
	}
	return append(out, "sluice promote "+rel.ID+" --push", "sluice abort "+rel.ID+" --push")
}

// stepText is a release's step as the status table says it: "-" with no
// canary, "manual", or "k/n what".
func stepText(rel *Release) string {
	st := rel.Status
	switch {
	case st.Canary == nil:
		return "-"
	case rel.Manual:
		return "manual"
	case len(rel.Steps) == 0:
		return fmt.Sprint(st.Step + 1)
	case int(st.Step) >= len(rel.Steps):
		return fmt.Sprintf("%d/%d", st.Step+1, len(rel.Steps))
	}
	return fmt.Sprintf("%d/%d %s", st.Step+1, len(rel.Steps), rel.Steps[st.Step])
}

// phaseSymbol is the phase's sign beside its name (colour is never the
// only signal).
func phaseSymbol(phase string) string {
	switch phase {
	case "Succeeded":
		return "✓"
	case "Aborted", "Failed":
		return "✗"
	case "RolledBack":
		return "↺"
	case "Paused":
		return "‖"
	case "Progressing", "Promoting":
		return "▶"
	}
	return "•"
}

func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", max(int(d.Seconds()), 0))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
