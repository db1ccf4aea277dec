// Command analyze-files runs every analyzer of `istioctl analyze` over YAML
// files, offline, with the files' Namespaces, Pods, Services, Secrets and
// Nodes included.
//
// `istioctl analyze --use-kube=false` drops those five kinds from its input
// files (they are "runtime" resources it only reads from a live cluster), so
// every analyzer that needs one of them is skipped: the gateway's selector,
// ports and credentialName, VirtualService destination hosts, authorization
// policy selectors, injection, annotations, port names and more. This is the
// same analysis with the files read as Istio's own analyzer tests read them
// (IstiodAnalyzer.AddTestReaderKubeSource), with the default mesh config, for
// all namespaces. Unlike istioctl offline it adds no default ingress gateway
// (a dummy pod and an istio-system/istio-ingressgateway Service with ports 80,
// 443, 31400 and 15443, which would replace a Service of that name in the
// files): the files bring the gateway the cluster has.
//
// Usage: analyze-files FILE...
//
// Prints the messages on stdout as `istioctl analyze -o json` does (a JSON
// array of {code, level, message, origin, reference, documentationUrl}) and
// the executed and skipped analyzers on stderr. Exit 0 when the analysis
// ran (whatever it found), 1 when it could not.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"istio.io/istio/pkg/config/analysis/analyzers"
	"istio.io/istio/pkg/config/analysis/local"
	"istio.io/istio/pkg/config/resource"
	"istio.io/istio/pkg/log"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "analyze-files: %v\n", err)
		os.Exit(1)
	}
}

func run(files []string) error {
	if len(files) == 0 {
		return fmt.Errorf("usage: analyze-files FILE...")
	}
	// istioctl's logging (pkg/root's defaultLogOptions), on stderr: stdout
	// carries only the JSON.
	o := log.DefaultOptions()
	o.OutputPaths = []string{"stderr"}
	o.ErrorOutputPaths = []string{"stderr"}
	o.SetDefaultOutputLevel("all", log.WarnLevel)
	o.SetDefaultOutputLevel("validation", log.ErrorLevel)
	o.SetDefaultOutputLevel("processing", log.ErrorLevel)
	o.SetDefaultOutputLevel("kube", log.ErrorLevel)
	if err := log.Configure(o); err != nil {
		return err
	}
	sa := local.NewSourceAnalyzer(analyzers.AllCombined(), "", resource.Namespace("istio-system"), nil)
	var readers []local.ReaderSource
	for _, f := range files {
		r, err := os.Open(f)
		if err != nil {
			return err
		}
		defer r.Close()
		readers = append(readers, local.ReaderSource{Name: f, Reader: r})
	}
	if err := sa.AddTestReaderKubeSource(readers); err != nil {
		return fmt.Errorf("reading files: %v", err)
	}
	cancel := make(chan struct{})
	result, err := sa.Analyze(cancel)
	if err != nil {
		return err
	}
	for _, a := range result.ExecutedAnalyzers {
		fmt.Fprintf(os.Stderr, "executed %s\n", a)
	}
	for _, a := range result.SkippedAnalyzers {
		fmt.Fprintf(os.Stderr, "skipped %s\n", a)
	}
	out := make([]map[string]any, 0, len(result.Messages))
	for _, m := range result.Messages {
		out = append(out, m.Unstructured(true))
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "\t")
	return enc.Encode(out)
}
