package render

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"helm.sh/helm/v4/pkg/action"
	ci "helm.sh/helm/v4/pkg/chart"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/loader/archive"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	helmrelease "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/strvals"
	sigsyaml "sigs.k8s.io/yaml"
)

// A chart's templates are a program the repository's authors wrote, and a
// Go template cannot be stopped or bounded from inside: a loop that
// doubles a string thirty times asks for gigabytes. So a chart renders in
// a process of its own — sluice's own binary, started again with
// helmChildEnv set — whose memory the kernel bounds (RLIMIT_DATA) and
// which is killed when its time is up. Whatever the chart does, the agent
// loses one render, not itself.

// helmChildEnv marks a sluice process started to render one chart.
const helmChildEnv = "SLUICE_HELM_RENDER_CHILD"

// DefaultMaxChartMemory bounds a chart render's process's data (heap).
const DefaultMaxChartMemory = 1 << 30

func init() {
	if os.Getenv(helmChildEnv) == "1" {
		os.Exit(helmChildMain(os.Stdin, os.Stdout))
	}
}

// helmRequest is one chart to render: everything the child needs, so it
// reads no file and opens no connection.
type helmRequest struct {
	Files       []*archive.BufferedFile
	ValuesFiles [][]byte
	Set         [][2]string
	ReleaseName string
	Namespace   string
	IncludeCRDs bool
	KubeVersion string
	APIVersions []string
	MaxMemory   int64
}

// helmResponse is the render, or why there is none.
type helmResponse struct {
	Manifest string
	Hooks    []*helmrelease.Hook
	// Error is the render's failure; ChartError says it is about the
	// chart itself (not installable, dependencies missing).
	Error      string
	ChartError bool
	Budget     bool
}

// helmChildMain renders the request on in as JSON to out; the exit status
// is 0 whenever a response was written.
func helmChildMain(in io.Reader, out io.Writer) int {
	var req helmRequest
	if err := json.NewDecoder(in).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "helm render child:", err)
		return 3
	}
	if req.MaxMemory > 0 {
		lim := &syscall.Rlimit{Cur: uint64(req.MaxMemory), Max: uint64(req.MaxMemory)}
		if err := syscall.Setrlimit(syscall.RLIMIT_DATA, lim); err != nil {
			fmt.Fprintln(os.Stderr, "helm render child: setrlimit:", err)
			return 3
		}
	}
	if err := json.NewEncoder(out).Encode(renderChart(&req)); err != nil {
		return 3
	}
	return 0
}

// renderChart is `helm template` of the request, in this process.
func renderChart(req *helmRequest) *helmResponse {
	ch, err := loader.LoadFiles(req.Files)
	if err != nil {
		return &helmResponse{Error: err.Error(), ChartError: true}
	}
	// What the helm command checks before it installs: an application
	// chart, every dependency present.
	if t := ch.Metadata.Type; t != "" && t != "application" {
		return &helmResponse{Error: t + " charts are not installable", ChartError: true}
	}
	if reqs := ch.Metadata.Dependencies; len(reqs) > 0 {
		deps := make([]ci.Dependency, len(reqs))
		for i, d := range reqs {
			deps[i] = d
		}
		if err := action.CheckDependencies(ch, deps); err != nil {
			return &helmResponse{Error: err.Error() + ": vendor them under charts/ (helm dependency build, then commit)", ChartError: true}
		}
	}
	vals, err := mergedValues(req.ValuesFiles, req.Set)
	if err != nil {
		return &helmResponse{Error: err.Error()}
	}
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler))
	funcs, work := templateFuncs()
	cfg.CustomTemplateFuncs = funcs
	install := action.NewInstall(cfg)
	install.DryRunStrategy = action.DryRunClient
	install.Replace = true
	install.ReleaseName = req.ReleaseName
	install.Namespace = req.Namespace
	install.IncludeCRDs = req.IncludeCRDs
	kv, err := common.ParseKubeVersion(req.KubeVersion)
	if err != nil {
		return &helmResponse{Error: fmt.Sprintf("kube version %q: %v", req.KubeVersion, err)}
	}
	install.KubeVersion = kv
	install.APIVersions = common.VersionSet(req.APIVersions)
	rel, err := install.Run(ch, vals)
	if err != nil {
		return &helmResponse{Error: err.Error(), Budget: work.exceeded()}
	}
	out := rel.(*helmrelease.Release)
	return &helmResponse{Manifest: out.Manifest, Hooks: out.Hooks}
}

// mergedValues merges values files in order, then the set values, as
// `helm template -f ... --set ...` does.
func mergedValues(files [][]byte, set [][2]string) (map[string]any, error) {
	vals := map[string]any{}
	for _, data := range files {
		current := map[string]any{}
		if err := sigsyaml.Unmarshal(data, &current); err != nil {
			return nil, err
		}
		vals = mergeValues(vals, current)
	}
	for _, kv := range set {
		if err := strvals.ParseInto(setArg(kv[0], kv[1]), vals); err != nil {
			return nil, fmt.Errorf("%s: %w", kv[0], err)
		}
	}
	return vals, nil
}

// setArg is key=value as --set takes it: a comma in a value is literal
// only escaped.
func setArg(key, value string) string {
	return key + "=" + strings.NewReplacer(`\`, `\\`, ",", `\,`).Replace(value)
}

// errChartMemory is a chart render that ran out of its memory.
var errChartMemory = errors.New("the chart's render ran out of its memory")

// runHelmChild renders req in a child process, killed past timeout.
func runHelmChild(req *helmRequest, timeout time.Duration) (*helmResponse, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = []string{helmChildEnv + "=1", "GOMAXPROCS=1", "GOTRACEBACK=none"}
	cmd.Stdin = bytes.NewReader(body)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%w: the chart took longer than %s to render", ErrBudget, timeout)
	}
	if err != nil {
		// The Go runtime's words for it, and the race detector's.
		if msg := stderr.String(); strings.Contains(msg, "out of memory") || strings.Contains(msg, "cannot allocate memory") || strings.Contains(msg, "failed to allocate") {
			return nil, fmt.Errorf("%w: %w (%d MiB)", ErrBudget, errChartMemory, req.MaxMemory>>20)
		}
		return nil, fmt.Errorf("the chart's render failed: %v: %s", err, firstLines(stderr.String(), 3))
	}
	var resp helmResponse
	if err := json.Unmarshal(stdout.Bytes(), &resp); err != nil {
		return nil, fmt.Errorf("the chart's render: %w", err)
	}
	return &resp, nil
}
