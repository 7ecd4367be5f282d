#include "ctl/upstream_tls.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <boost/asio/ip/address.hpp>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <memory>
#include <stdexcept>

#include "core/topology.h"
#include "ctl/secrets.h"

namespace millions::ctl::upstream_tls {
namespace {

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Free>;
using Cert = std::unique_ptr<X509, Free>;
using Bio = std::unique_ptr<BIO, Free>;

constexpr long kDay = 86'400;
constexpr long kCaDays = 3650;
constexpr long kNodeDays = 825;
constexpr long kRenewDays = 30;  // a file with less left than this is made anew

std::string Dir(const std::string& run_dir) { return topo::UpstreamTlsDir(run_dir); }

std::string CaKeyPath(const std::string& run_dir) { return Dir(run_dir) + "/ca.key"; }

void MakeDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (chmod(dir.c_str(), 0700) != 0)
    throw std::runtime_error("cannot create " + dir + ": " + strerror(errno));
}

Cert ReadCert(const std::string& path) {
  Bio b(BIO_new_file(path.c_str(), "r"));
  return Cert(b ? PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr) : nullptr);
}

Key ReadKey(const std::string& path) {
  Bio b(BIO_new_file(path.c_str(), "r"));
  return Key(b ? PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr) : nullptr);
}

std::string Pem(BIO* b) {
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  return std::string(data, static_cast<size_t>(n));
}

// The key 0600 (secrets::WriteFile: a temporary file renamed into place), the certificate 0644.
void Write(const std::string& run_dir, const std::string& name, EVP_PKEY* key, X509* cert) {
  Bio kb(BIO_new(BIO_s_mem())), cb(BIO_new(BIO_s_mem()));
  if (!kb || !cb ||
      PEM_write_bio_PrivateKey(kb.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1 ||
      PEM_write_bio_X509(cb.get(), cert) != 1)
    throw std::runtime_error("cannot encode a certificate");
  std::string base = Dir(run_dir) + "/" + name;
  secrets::WriteFile(base + ".key", Pem(kb.get()), "");
  secrets::WriteFile(base + ".pem", Pem(cb.get()), "");
  chmod((base + ".pem").c_str(), 0644);  // public: anyone may check a node against it
}

// Still valid for kRenewDays more days.
bool Fresh(X509* c) {
  time_t later = time(nullptr) + kRenewDays * kDay;
  return X509_cmp_time(X509_get0_notAfter(c), &later) > 0 &&
         X509_cmp_current_time(X509_get0_notBefore(c)) < 0;
}

Key NewKey() {
  Key k(EVP_EC_gen("P-256"));
  if (!k) throw std::runtime_error("cannot make a key");
  return k;
}

void Add(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  bool ok = ext && X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  if (!ok) throw std::runtime_error("cannot add a certificate extension");
}

// A certificate for `key` named `cn`, signed by `issuer_key` (issuer: nullptr for self-signed),
// valid from an hour ago for `days`, with a random 128-bit serial.
Cert NewCert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key, long days) {
  Cert c(X509_new());
  std::unique_ptr<BIGNUM, Free> serial(BN_new());
  if (!c || !serial || X509_set_version(c.get(), 2) != 1 ||
      BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(c.get())))
    throw std::runtime_error("cannot make a certificate");
  X509_gmtime_adj(X509_getm_notBefore(c.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(c.get()), days * kDay);
  X509_NAME* name = X509_get_subject_name(c.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("millions"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(c.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509_set_pubkey(c.get(), key);
  X509* signer = issuer ? issuer : c.get();
  Add(c.get(), signer, NID_subject_key_identifier, "hash");
  Add(c.get(), signer, NID_authority_key_identifier, "keyid:always");
  if (!issuer) {
    Add(c.get(), signer, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
    Add(c.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    Add(c.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    Add(c.get(), signer, NID_key_usage, "critical,digitalSignature");
    Add(c.get(), signer, NID_ext_key_usage, "serverAuth");
  }
  return c;
}

void Sign(X509* c, EVP_PKEY* key) {
  if (X509_sign(c, key, EVP_sha256()) <= 0) throw std::runtime_error("cannot sign a certificate");
}

// The subjectAltName naming `host`: an IP address, or a DNS name.
std::string AltName(const std::string& host) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  return (ec ? "DNS:" : "IP:") + host;
}

bool Names(X509* c, const std::string& host) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  if (!ec) return X509_check_ip_asc(c, host.c_str(), 0) == 1;
  return X509_check_host(c, host.c_str(), host.size(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
                         nullptr) == 1;
}

Status Failed(const std::exception& e) {
  return MakeError(Errc::kInternal, "upstream_tls", e.what());
}

}  // namespace

std::string CaPath(const std::string& run_dir) { return Dir(run_dir) + "/ca.pem"; }

std::string CertPath(const std::string& run_dir, const std::string& node) {
  return Dir(run_dir) + "/" + node + ".pem";
}

std::string KeyPath(const std::string& run_dir, const std::string& node) {
  return Dir(run_dir) + "/" + node + ".key";
}

Status EnsureCa(const std::string& run_dir) {
  try {
    MakeDir(Dir(run_dir));
    Cert ca = ReadCert(CaPath(run_dir));
    Key key = ReadKey(CaKeyPath(run_dir));
    if (ca && key && X509_check_private_key(ca.get(), key.get()) == 1 && Fresh(ca.get()))
      return Ok();
    key = NewKey();
    ca = NewCert(key.get(), "millions upstream CA", nullptr, nullptr, kCaDays);
    Sign(ca.get(), key.get());
    Write(run_dir, "ca", key.get(), ca.get());
    return Ok();
  } catch (const std::exception& e) {
    return Failed(e);
  }
}

Status EnsureNode(const std::string& run_dir, const std::string& node, const std::string& host) {
  try {
    Cert ca = ReadCert(CaPath(run_dir));
    Key ca_key = ReadKey(CaKeyPath(run_dir));
    if (!ca || !ca_key) throw std::runtime_error("no CA in " + Dir(run_dir));
    Cert cert = ReadCert(CertPath(run_dir, node));
    Key key = ReadKey(KeyPath(run_dir, node));
    if (cert && key && X509_check_private_key(cert.get(), key.get()) == 1 &&
        X509_verify(cert.get(), X509_get0_pubkey(ca.get())) == 1 && Names(cert.get(), host) &&
        Fresh(cert.get()))
      return Ok();
    key = NewKey();
    cert = NewCert(key.get(), node, ca.get(), ca_key.get(), kNodeDays);
    Add(cert.get(), ca.get(), NID_subject_alt_name, AltName(host));
    Sign(cert.get(), ca_key.get());
    Write(run_dir, node, key.get(), cert.get());
    return Ok();
  } catch (const std::exception& e) {
    return Failed(e);
  }
}

}  // namespace millions::ctl::upstream_tls
