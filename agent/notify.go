package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/egress"
	"github.com/sluice-dev/sluice/internal/redact"
	"github.com/sluice-dev/sluice/strategy"
)

// Notification is what a webhook receives on a phase change.
type Notification struct {
	Release       string         `json:"release"`
	Phase         v1alpha1.Phase `json:"phase"`
	PreviousPhase v1alpha1.Phase `json:"previousPhase"`
	Step          int32          `json:"step"`
	Weight        int32          `json:"weight"`
	Revision      string         `json:"revision"`
	Message       string         `json:"message"`
	Time          time.Time      `json:"time"`
}

// transitionEvent is one committed transition to announce.
type transitionEvent struct {
	n         Notification
	namespace string
	workload  string
	reason    string
	// warning makes the Event a Warning whatever the phase.
	warning bool
}

// notifier delivers Events and webhooks from its own goroutine, so the loop
// never waits on them; when its queue is full, new ones are dropped and
// logged.
type notifier struct {
	urls     []string
	client   *http.Client
	log      *zap.Logger
	queue    chan transitionEvent
	events   record.EventBroadcaster
	recorder record.EventRecorder
}

func newNotifier(urls []string, cs kubernetes.Interface, log *zap.Logger) *notifier {
	n := &notifier{urls: urls, client: egress.Client(10 * time.Second), log: log, queue: make(chan transitionEvent, 256)}
	if cs != nil {
		// client-go's recorder: Events are correlated and counted as
		// kubectl shows them. Its spam filter allows a burst of 100 per
		// workload (a canary's transitions), then one a second.
		n.events = record.NewBroadcaster(record.WithCorrelatorOptions(record.CorrelatorOptions{BurstSize: 100, QPS: 1}))
		n.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
		n.recorder = n.events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "sluice"})
	}
	return n
}

func (n *notifier) send(e transitionEvent) {
	select {
	case n.queue <- e:
	default:
		n.log.Warn("notification queue full; dropped", zap.String("release", e.n.Release))
	}
}

func (n *notifier) run(ctx context.Context) {
	if n.events != nil {
		defer n.events.Shutdown()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-n.queue:
			n.event(ctx, e)
			if e.n.Phase != e.n.PreviousPhase {
				for _, u := range n.urls {
					n.post(ctx, u, e.n)
				}
			}
		}
	}
}

// event records a Kubernetes Event on the release's workload.
func (n *notifier) event(_ context.Context, e transitionEvent) {
	if n.recorder == nil {
		return
	}
	typ := corev1.EventTypeNormal
	if e.warning || e.n.Phase == v1alpha1.PhaseAborted || e.n.Phase == v1alpha1.PhaseFailed || e.n.Phase == v1alpha1.PhaseRolledBack {
		typ = corev1.EventTypeWarning
	}
	ref := &corev1.ObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: e.namespace, Name: e.workload}
	n.recorder.Eventf(ref, typ, e.reason, "%s step %d weight %d: %s", e.n.Phase, e.n.Step, e.n.Weight, e.n.Message)
}

// post delivers one notification, retrying three times with backoff. Slack
// incoming-webhook URLs get Slack's {"text": ...} shape.
func (n *notifier) post(ctx context.Context, url string, msg Notification) {
	var body []byte
	if strings.Contains(url, "hooks.slack.com") || strings.Contains(url, "/slack") {
		body, _ = json.Marshal(map[string]string{"text": fmt.Sprintf("*%s* %s → %s (step %d, weight %d, %s): %s",
			msg.Release, msg.PreviousPhase, msg.Phase, msg.Step, msg.Weight, shortRev(msg.Revision), msg.Message)})
	} else {
		body, _ = json.Marshal(msg)
	}
	backoff := wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Steps: 3}
	for attempt := 1; attempt <= 3; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			// The URL (its path may be the secret) never reaches the log.
			n.log.Warn("notification URL invalid", zap.String("endpoint", redact.Endpoint(url)), zap.String("error", redact.String(err.Error(), url)))
			return
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := n.client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 300 {
				return
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		n.log.Warn("notification failed", zap.String("release", msg.Release), zap.String("endpoint", redact.Endpoint(url)),
			zap.Int("attempt", attempt), zap.String("error", redact.String(err.Error(), url, req.URL.Path)))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff.Step()):
		}
	}
}

func shortRev(r string) string {
	if len(r) > 7 {
		return r[:7]
	}
	return r
}

// postRollout calls a release's post-rollout checks once its rollout has
// ended (promoted, aborted, rolled back), from its own goroutine so the
// loop never waits on them. Their answers are logged, counted and recorded
// as Events on the workload; nothing acts on them.
func (a *Agent) postRollout(ctx context.Context, rel *v1alpha1.Release, cc strategy.CheckContext, phase v1alpha1.Phase) {
	cc.Phase = string(phase)
	for _, name := range rel.Spec.Analysis.PostRollout {
		m := a.runner.Run(ctx, rel.Spec.CheckByName(name), cc)
		a.metrics.measured(rel.ID(), name, string(m.Outcome), m.Value)
		a.log.Info("post-rollout check", zap.String("release", rel.ID()), zap.String("check", name), zap.String("phase", cc.Phase),
			zap.String("outcome", string(m.Outcome)), zap.String("value", m.Value))
		a.notify.send(transitionEvent{
			n: Notification{Release: rel.ID(), Phase: phase, PreviousPhase: phase, Revision: cc.Revision, Time: a.now(),
				Message: fmt.Sprintf("post-rollout check %s: %s (%s)", name, m.Outcome, m.Value)},
			namespace: rel.Metadata.Namespace, workload: rel.Spec.Workload.Name, reason: "SluicePostRollout", warning: m.Outcome != strategy.Pass,
		})
	}
}
