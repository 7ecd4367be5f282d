#include "core/tls.h"

#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>
#include <stdexcept>

namespace millions::tls {

namespace asio = boost::asio;

namespace {

// Mozilla's "intermediate" TLS 1.2 list: ECDHE key exchange, AEAD ciphers.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

}  // namespace

void ApplyPolicy(asio::ssl::context& ctx) {
  ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                  asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                  asio::ssl::context::no_tlsv1_1 | asio::ssl::context::no_compression);
  SSL_CTX* native = ctx.native_handle();
  // The floor is TLS 1.2; TLS 1.3 keeps OpenSSL's suites (AES-GCM, ChaCha20-Poly1305), and
  // TLS 1.2 gets forward-secret AEAD suites only.
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1)
    throw std::runtime_error("could not set the TLS protocol floor and ciphers");
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION);
}

std::shared_ptr<asio::ssl::context> ClientContext(const std::string& ca_file) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  ApplyPolicy(*ctx);
  boost::system::error_code ec;
  ctx->load_verify_file(ca_file, ec);
  if (ec)
    throw std::runtime_error("cannot read the CA certificates in " + ca_file + ": " + ec.message());
  // Only the given CA is trusted: nothing from the system's store is loaded.
  ctx->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
  return ctx;
}

bool Expect(SSL* ssl, const std::string& host) {
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  if (!ec) return X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) == 1;
  // A name: no partial wildcards, and SNI so that a server with several names picks this one.
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  return SSL_set1_host(ssl, host.c_str()) == 1 &&
         SSL_set_tlsext_host_name(ssl, const_cast<char*>(host.c_str())) == 1;
}

std::string HandshakeError(SSL* ssl, const std::string& fallback) {
  long v = SSL_get_verify_result(ssl);
  if (v != X509_V_OK) return std::string("certificate: ") + X509_verify_cert_error_string(v);
  return fallback;
}

}  // namespace millions::tls
