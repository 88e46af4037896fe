package gitsource

import (
	"github.com/sluice-dev/sluice/internal/egress"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// HTTPTimeout bounds one HTTP exchange with the Git server, so a server
// that stops answering mid-request cannot stall the agent's loop.
const HTTPTimeout = time.Minute

var installTransport sync.Once

// boundedHTTP replaces go-git's default HTTP(S) transport, whose client has
// no timeout, with one whose dials, TLS handshakes, response headers and
// whole exchanges are bounded.
func boundedHTTP() {
	installTransport.Do(func() {
		tr := egress.Transport()
		tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		tr.TLSHandshakeTimeout = 10 * time.Second
		tr.ResponseHeaderTimeout = 20 * time.Second
		c := githttp.NewClient(&http.Client{Transport: tr, Timeout: HTTPTimeout})
		client.InstallProtocol("http", c)
		client.InstallProtocol("https", c)
	})
}
