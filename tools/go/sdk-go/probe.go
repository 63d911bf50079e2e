// sdk-probe-go: what the AWS SDK for Go v2 resolves in this process's environment, the
// way an application does it: config.LoadDefaultConfig, then its credential chain.
// Prints one JSON object (sdk, method, credentials, region, error), like
// e2e-tests/tools/sdk_probe.py does for botocore.
package main

import (
	"context"
	"encoding/json"
	"os"
	"runtime/debug"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
)

type creds struct {
	AccessKey string  `json:"access_key"`
	SecretKey string  `json:"secret_key"`
	Token     *string `json:"token"`
}

type report struct {
	SDK         string  `json:"sdk"`
	Method      *string `json:"method"`
	Credentials *creds  `json:"credentials"`
	Region      *string `json:"region"`
	Error       *string `json:"error"`
}

func sdkVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "github.com/aws/aws-sdk-go-v2/config" {
				return "aws-sdk-go-v2/config " + dep.Version
			}
		}
	}
	return "aws-sdk-go-v2"
}

func main() {
	r := report{SDK: sdkVersion()}
	// The SDK's own retries and timeouts apply; this bound only keeps a hung probe from
	// hanging the suite.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		msg := err.Error()
		r.Error = &msg
	} else {
		if cfg.Region != "" {
			r.Region = &cfg.Region
		}
		c, err := cfg.Credentials.Retrieve(ctx)
		if err != nil {
			msg := err.Error()
			r.Error = &msg
		} else {
			r.Method = &c.Source
			r.Credentials = &creds{AccessKey: c.AccessKeyID, SecretKey: c.SecretAccessKey}
			if c.SessionToken != "" {
				r.Credentials.Token = &c.SessionToken
			}
		}
	}
	json.NewEncoder(os.Stdout).Encode(r)
}
