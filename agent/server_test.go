package agent

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
)

// serve runs a's listener for the test and returns its address.
func serve(t *testing.T, a *Agent) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go a.Serve(ctx, l)
	return l.Addr().String()
}

func polled(a *Agent) bool {
	select {
	case <-a.poke:
		return true
	default:
		return false
	}
}

// A hook sent to a follower reaches the leader's poll, once; the follower
// does not poll; a forwarded hook is never forwarded again.
func TestHookForwardedToTheLeader(t *testing.T) {
	leader := &Agent{poke: make(chan struct{}, 1), metrics: newMetrics()}
	follower := &Agent{poke: make(chan struct{}, 1), metrics: newMetrics()}
	leaderAddr := serve(t, leader)
	leader.SetLeader(func() (bool, string) { return true, "" })
	followerAddr := serve(t, follower)
	follower.SetLeader(func() (bool, string) { return false, leaderAddr })

	post := func(addr string, header map[string]string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/hook", strings.NewReader(`{"ref":"refs/heads/main"}`))
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(followerAddr, nil); code != http.StatusAccepted {
		t.Fatalf("hook to the follower: %d", code)
	}
	if !polled(leader) || polled(follower) {
		t.Fatal("the follower's hook did not make the leader poll (or the follower polled)")
	}
	// A hook already forwarded is handled where it lands.
	if code := post(followerAddr, map[string]string{forwardedHeader: "1"}); code != http.StatusAccepted || !polled(follower) || polled(leader) {
		t.Fatalf("a forwarded hook was forwarded again (code %d)", code)
	}
	// No leader known: the sender is told to retry.
	follower.SetLeader(func() (bool, string) { return false, "" })
	if code := post(followerAddr, nil); code != http.StatusBadGateway || polled(follower) {
		t.Fatalf("no leader: code %d", code)
	}
}
