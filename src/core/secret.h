// Secrets a node reads: the credentials `millions up` generates into its run directory
// (RUN/secrets, one file a secret, 0600) and hands to the web nodes and workers it starts by
// naming that directory in MILLIONS_SECRETS. Nothing here logs or prints a secret.
// Thread-safety: functions only. Ownership: the caller owns the strings it gets.
#pragma once

#include <string>

namespace millions::secret {

// The environment variable that names the directory of secrets.
inline constexpr const char* kEnv = "MILLIONS_SECRETS";

// The contents of `path` without trailing newlines; empty when it cannot be read.
std::string ReadFile(const std::string& path);
// The secret `name` from the directory $MILLIONS_SECRETS; empty when the variable is unset or the
// file absent: a node started without `up` (tests, `serve` by hand) talks to engines that ask for
// no credentials.
std::string FromEnv(const std::string& name);

// A token for one purpose derived from a secret both sides hold: HMAC-SHA-256(key, purpose) in
// hex, so that the secret itself never crosses the wire (the reshard's nudge of the web nodes
// proves it knows the shard map's etcd password this way). Empty when `key` is empty.
std::string Derive(const std::string& key, const std::string& purpose);
// Whether `given` equals `want`, in time that does not depend on where they differ.
bool Equal(const std::string& given, const std::string& want);

// Derive's purpose for the reshard's `POST /shardmap/refresh` to the web nodes.
inline constexpr const char* kShardMapRefresh = "millions shard map refresh";

}  // namespace millions::secret
