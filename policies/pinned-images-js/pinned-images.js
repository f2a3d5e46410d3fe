// Example policy, in JavaScript: an image must name an exact version.
// Refuses images tagged `latest` or carrying no tag; with
// `{"require_digest": true}` in its settings, only `@sha256:` references pass.
import { settings } from "mcp-runtime:plugin/config@1.8.0";

// A thrown object is the `denial` of `result<policy-output, denial>`.
function deny(field, reason) {
  throw { field, reason };
}

// Settings that cannot be read deny every request rather than loosen the policy.
function requireDigest() {
  let parsed;
  try {
    parsed = JSON.parse(settings());
  } catch (e) {
    deny("settings", `pinned-images: ${e.message}`);
  }
  const value = parsed?.require_digest ?? false;
  if (typeof value !== "boolean") deny("settings", "pinned-images: require_digest must be true or false");
  return value;
}

function check(image, digestRequired) {
  // A package's purl names an exact version; the host pins its tree by a lock.
  if (image.includes("@sha256:") || image.startsWith("pkg:")) return;
  if (digestRequired) deny("source.image", `'${image}' must be pinned by digest (@sha256:...)`);
  // The tag follows the last ':' after the last '/' (a ':' before it is a registry port).
  const name = image.slice(image.lastIndexOf("/") + 1);
  const colon = name.indexOf(":");
  if (colon < 0) deny("source.image", `'${image}' has no tag: pin a version`);
  if (name.slice(colon + 1) === "latest") deny("source.image", `'${image}' uses the moving tag 'latest': pin a version`);
}

export const policy = {
  evaluate(input) {
    const source = input.request.entry.source;
    if (source.tag === "image") check(source.val.image, requireDigest());
    return { effective: input.effective, warnings: input.warnings };
  },
};
