// The certificates of [lb] upstream_tls (docs/security.md), made by `millions up` into
// RUN/tls/upstream (topo::UpstreamTlsDir, a directory 0700): a private CA for the run (ca.pem,
// its key ca.key 0600), which the balancers trust and nothing else does, and for each web node
// with a tls_listen a certificate it signs (NODE.pem, key NODE.key 0600) whose only
// subjectAltName is the host of that listener, so a balancer that dials the node's address
// can check the certificate names it. ECDSA P-256, SHA-256. Files that are still good are kept
// across starts; a key is never printed or logged.
// Thread-safety: functions only; the runner calls them from one thread at a time (start-up,
// scale). Ownership: values only.
#pragma once

#include <string>

#include "core/result.h"

namespace millions::ctl::upstream_tls {

// The run's CA: kept when ca.pem and ca.key are there, match and stay valid 30 more days; else
// made anew (every node certificate then no longer verifies and is made anew by EnsureNode).
Status EnsureCa(const std::string& run_dir);

// Web node `node`'s certificate for its TLS listener on `host` (an IP literal or a name): kept
// when it names `host`, is signed by the run's CA, matches its key and stays valid 30 more
// days; else made anew. The CA must exist (EnsureCa).
Status EnsureNode(const std::string& run_dir, const std::string& node, const std::string& host);

// Paths, for the nodes and the tests.
std::string CaPath(const std::string& run_dir);
std::string CertPath(const std::string& run_dir, const std::string& node);
std::string KeyPath(const std::string& run_dir, const std::string& node);

}  // namespace millions::ctl::upstream_tls
