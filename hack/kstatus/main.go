// Command kstatus prints what kstatus (the status library of Flux, kpt and `kubectl wait`'s
// conventions) makes of Kubernetes objects, so that tests can hold our status to it.
//
// It reads a JSON array of objects on stdin and writes a JSON array of
// {"kind", "namespace", "name", "status", "message"} on stdout, one entry per object, in order.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// verdict is one object's kstatus result.
type verdict struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	Message   string `json:"message"`
}

func main() {
	verdicts, err := computeAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(verdicts); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
}

func computeAll(in io.Reader) ([]verdict, error) {
	var raws []json.RawMessage
	if err := json.NewDecoder(in).Decode(&raws); err != nil {
		return nil, fmt.Errorf("stdin: expected a JSON array of Kubernetes objects: %w", err)
	}
	verdicts := make([]verdict, 0, len(raws))
	for i, raw := range raws {
		v, err := compute(raw)
		if err != nil {
			return nil, fmt.Errorf("object [%d]: %w", i, err)
		}
		verdicts = append(verdicts, v)
	}
	return verdicts, nil
}

// compute decodes through Unstructured's own JSON path, which keeps integers as int64: kstatus
// reads metadata.generation and status.observedGeneration as int64 and refuses float64.
func compute(raw json.RawMessage) (verdict, error) {
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(raw); err != nil {
		return verdict{}, err
	}
	result, err := status.Compute(u)
	if err != nil {
		return verdict{}, fmt.Errorf("%s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	return verdict{
		Kind:      u.GetKind(),
		Namespace: u.GetNamespace(),
		Name:      u.GetName(),
		Status:    result.Status.String(),
		Message:   result.Message,
	}, nil
}
