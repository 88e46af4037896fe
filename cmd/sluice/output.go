package main

import (
	"encoding/json"
	"fmt"
	"io"

	sigsyaml "sigs.k8s.io/yaml"
)

// printAs writes v as -o asks: yaml, json, or the command's table.
func printAs(w io.Writer, output string, v any, table func(io.Writer)) error {
	switch output {
	case "yaml":
		b, err := sigsyaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	case "json":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	case "", "table":
		table(w)
		return nil
	}
	return &exitError{code: 2, msg: fmt.Sprintf("-o %q: want table, yaml or json", output)}
}
