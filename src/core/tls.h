// TLS settings shared by both ends of our connections: the policy every listener and client of
// ours applies (TLS 1.2 floor, forward-secret AEAD suites, no compression, no renegotiation;
// docs/security.md), and the client side of the balancer's hop to the web nodes
// ([lb] upstream_tls): a context that trusts the CA certificates of one file and, per
// connection, asks the peer's certificate to name the address dialled.
// Thread-safety: a context is built at start-up and then only read (OpenSSL locks its own
// state); Expect is called on one connection's SSL at a time.
// Ownership: ClientContext's result is shared by every connection made with it.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

namespace millions::tls {

// Applies the policy to `ctx` (a server's or a client's). Throws std::runtime_error.
void ApplyPolicy(boost::asio::ssl::context& ctx);

// A client context that verifies every peer against the CA certificates in `ca_file` (PEM).
// Throws (start-up) when the file cannot be read.
std::shared_ptr<boost::asio::ssl::context> ClientContext(const std::string& ca_file);

// Before a client handshake: the peer's certificate must name `host`: an IP literal must be
// one of its IP subjectAltNames, a name one of its DNS names (and is sent as SNI). False when
// OpenSSL refuses the expectation (the handshake must not go on then).
bool Expect(SSL* ssl, const std::string& host);

// Why the last handshake on `ssl` failed, for a log line: the certificate check's reason when
// verification failed, else `fallback`.
std::string HandshakeError(SSL* ssl, const std::string& fallback);

}  // namespace millions::tls
