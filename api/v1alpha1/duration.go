package v1alpha1

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as Go writes durations ("2m", "30s").
type Duration struct{ time.Duration }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (use a number and a unit, e.g. 30s, 2m, 1h)", s)
	}
	return v, nil
}

// IntOrPercent is a count ("1") or a percent ("25%"), as Deployment's
// maxSurge and maxUnavailable.
type IntOrPercent struct {
	Value   int32
	Percent bool
}

// String writes 3 or "25%".
func (v IntOrPercent) String() string {
	if v.Percent {
		return fmt.Sprintf("%d%%", v.Value)
	}
	return strconv.Itoa(int(v.Value))
}

// MarshalJSON writes a number or a percent string.
func (v IntOrPercent) MarshalJSON() ([]byte, error) {
	if v.Percent {
		return json.Marshal(v.String())
	}
	return json.Marshal(v.Value)
}

// UnmarshalJSON reads a number or a percent string.
func (v *IntOrPercent) UnmarshalJSON(b []byte) error {
	var n int32
	if err := json.Unmarshal(b, &n); err == nil {
		*v = IntOrPercent{Value: n}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("expected a number or a percent such as \"25%%\"")
	}
	p, err := parseIntOrPercent(s)
	if err != nil {
		return err
	}
	*v = p
	return nil
}

func parseIntOrPercent(s string) (IntOrPercent, error) {
	if n, ok := strings.CutSuffix(s, "%"); ok {
		p, err := strconv.ParseInt(n, 10, 32)
		if err != nil || p < 0 || p > 100 {
			return IntOrPercent{}, fmt.Errorf("invalid percent %q (use 0%%..100%%)", s)
		}
		return IntOrPercent{Value: int32(p), Percent: true}, nil
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n < 0 {
		return IntOrPercent{}, fmt.Errorf("expected a non-negative number or a percent such as \"25%%\", got %q", s)
	}
	return IntOrPercent{Value: int32(n)}, nil
}
