// What the AWS SDK for JavaScript v3 resolves in this process's environment, the way an
// application does: a client's region (STSClient's config) and the default credential
// chain of Node.js (fromNodeProviderChain, what a client uses by default). Prints one
// JSON object (sdk, method, credentials, region, error), like tools/sdk_probe.py does for
// botocore. e2e-tests/tools/sdk_check.py runs it with an app container's environment.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { STSClient } from "@aws-sdk/client-sts";
import { fromNodeProviderChain } from "@aws-sdk/credential-providers";

const require = createRequire(import.meta.url);
const version = JSON.parse(
  readFileSync(require.resolve("@aws-sdk/credential-providers/package.json"), "utf8"),
).version;
const report = { sdk: `@aws-sdk/credential-providers ${version}`, method: null, credentials: null, region: null, error: null };
try {
  report.region = await new STSClient({}).config.region();
} catch (e) {
  // No region is not an error of the credential chain: it is reported as null.
  report.region = null;
}
try {
  const c = await fromNodeProviderChain()();
  // Some providers record themselves in $source; the instance metadata one does not,
  // so the test tells the sidecar's credentials by their keys.
  report.method = Object.keys(c.$source ?? {}).join(",") || null;
  report.credentials = { access_key: c.accessKeyId, secret_key: c.secretAccessKey, token: c.sessionToken ?? null };
} catch (e) {
  report.error = `${e.name}: ${e.message}`;
}
process.stdout.write(JSON.stringify(report) + "\n");
