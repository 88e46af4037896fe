package v1alpha1

import (
	"fmt"
	"math"
	"strconv"
	"strings"
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
