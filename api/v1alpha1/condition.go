package v1alpha1

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Condition is a parsed successCondition: the measured value compared with
// a threshold, e.g. ">= 0.99" or "result < 500".
type Condition struct {
	Op        string
	Threshold float64
}

var conditionOps = []string{">=", "<=", "==", "!=", ">", "<"}

// ParseCondition parses "[result] OP NUMBER" with OP one of >= <= == != > <.
func ParseCondition(s string) (Condition, error) {
	rest := strings.TrimSpace(s)
	rest = strings.TrimSpace(strings.TrimPrefix(rest, "result"))
	for _, op := range conditionOps {
		if num, ok := strings.CutPrefix(rest, op); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
			if err != nil || math.IsNaN(f) {
				return Condition{}, fmt.Errorf("invalid successCondition %q: %q is not a number", s, strings.TrimSpace(num))
			}
			return Condition{Op: op, Threshold: f}, nil
		}
	}
	return Condition{}, fmt.Errorf("invalid successCondition %q: want an operator (>=, <=, ==, !=, >, <) and a number, e.g. \">= 0.99\"", s)
}

// Holds reports whether v satisfies the condition. NaN never does.
func (c Condition) Holds(v float64) bool {
	if math.IsNaN(v) {
		return false
	}
	switch c.Op {
	case ">=":
		return v >= c.Threshold
	case "<=":
		return v <= c.Threshold
	case "==":
		return v == c.Threshold
	case "!=":
		return v != c.Threshold
	case ">":
		return v > c.Threshold
	case "<":
		return v < c.Threshold
	}
	return false
}

// String writes the condition back as "OP NUMBER".
func (c Condition) String() string {
	return c.Op + " " + strconv.FormatFloat(c.Threshold, 'g', -1, 64)
}

// What a check does when its samples stay too few (Check.OnTooFewSamples).
const (
	TooFewFail  = "fail"
	TooFewPause = "pause"
)

// DefaultSamplesTimeout is how long a check waits for enough samples.
const DefaultSamplesTimeout = 10 * time.Minute

// MinSamplesFor is the default minimum of samples for a condition that
// guards a rate: the fewest requests in which a version failing at exactly
// the rate the condition tolerates would, with 95% probability, have shown
// a failure — n = ⌈ln 0.05 / ln(1−r)⌉. ">= 0.99" (a success rate, r = 1%)
// gives 299; "< 0.05" (an error rate, r = 5%) gives 59. A condition that
// is not on a rate between 0 and 1 gives 1.
func MinSamplesFor(c Condition) int32 {
	var r float64
	switch {
	case (c.Op == ">=" || c.Op == ">") && c.Threshold > 0 && c.Threshold < 1:
		r = 1 - c.Threshold
	case (c.Op == "<=" || c.Op == "<") && c.Threshold > 0 && c.Threshold < 1:
		r = c.Threshold
	default:
		return 1
	}
	return int32(math.Ceil(math.Log(0.05) / math.Log(1-r)))
}

// Samples is the check's minimum of samples per measurement, 0 when it
// counts none (no countQuery).
func (c *Check) Samples() int32 {
	if c.Prometheus == nil || c.Prometheus.CountQuery == "" {
		return 0
	}
	if c.MinSamples != nil {
		return *c.MinSamples
	}
	cond, err := ParseCondition(c.SuccessCondition)
	if err != nil {
		return 1
	}
	return MinSamplesFor(cond)
}
