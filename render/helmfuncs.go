package render

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"text/template"

	"github.com/Masterminds/sprig/v3"
)

// maxTemplateWork bounds the elements one chart's render may generate
// with until, untilStep, seq and repeat together: enough for any chart
// that renders a few thousand objects, far from what exhausts memory.
const maxTemplateWork = 4_000_000

// templateWork counts what a render's generating functions produced.
type templateWork struct {
	n    atomic.Int64
	over atomic.Bool
}

func (w *templateWork) charge(fn string, n int64) error {
	if n < 0 {
		n = 0
	}
	if w.n.Add(n) > maxTemplateWork {
		w.over.Store(true)
		return fmt.Errorf("%s: the chart's templates generated more than %d elements", fn, maxTemplateWork)
	}
	return nil
}

func (w *templateWork) exceeded() bool { return w.over.Load() }

// errNondeterministic says why such a function is refused.
var errNondeterministic = errors.New("not deterministic: the render would differ on every pass and start a new version each time; generate the value once and commit it (encrypted with SOPS if secret)")

// nondeterministic are sprig's functions whose result differs on every
// call (random values, the clock, fresh keys and certificates, salted
// hashes). A render must be the same for the same commit: otherwise every
// pass would see a new version.
var nondeterministic = []string{
	"randAlphaNum", "randAlpha", "randAscii", "randNumeric", "randBytes", "randInt",
	"uuidv4", "shuffle", "now", "ago", "htpasswd", "bcrypt", "encryptAES",
	"genPrivateKey", "genCA", "genCAWithKey", "genSelfSignedCert", "genSelfSignedCertWithKey",
	"genSignedCert", "genSignedCertWithKey",
}

// templateFuncs are the functions sluice adds over Helm's: the generating
// ones charged to a work budget, the nondeterministic ones refused by name.
func templateFuncs() (template.FuncMap, *templateWork) {
	w := &templateWork{}
	orig := sprig.TxtFuncMap()
	seq := orig["seq"].(func(...int) string)
	f := template.FuncMap{
		"until": func(count int) ([]int, error) {
			if err := w.charge("until", int64(count)); err != nil {
				return nil, err
			}
			return orig["until"].(func(int) []int)(count), nil
		},
		"untilStep": func(start, stop, step int) ([]int, error) {
			if step != 0 {
				if err := w.charge("untilStep", int64((stop-start)/step)); err != nil {
					return nil, err
				}
			}
			return orig["untilStep"].(func(int, int, int) []int)(start, stop, step), nil
		},
		"seq": func(params ...int) (string, error) {
			start, end, step := 1, 0, 1
			switch len(params) {
			case 1:
				end = params[0]
			case 2:
				start, end = params[0], params[1]
			case 3:
				start, step, end = params[0], params[1], params[2]
			}
			if step != 0 {
				n := (end - start) / step
				if n < 0 {
					n = -n
				}
				if err := w.charge("seq", int64(n)); err != nil {
					return "", err
				}
			}
			return seq(params...), nil
		},
		"repeat": func(count int, str string) (string, error) {
			if err := w.charge("repeat", int64(count)*int64(len(str)+1)); err != nil {
				return "", err
			}
			return strings.Repeat(str, max(count, 0)), nil
		},
	}
	for _, name := range nondeterministic {
		f[name] = func(...any) (string, error) {
			return "", fmt.Errorf("%s is %w", name, errNondeterministic)
		}
	}
	return f, w
}
