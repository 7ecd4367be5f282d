#include "ctl/upstream_tls.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/topology.h"

namespace millions::ctl::upstream_tls {
namespace {

namespace fs = std::filesystem;

X509* Read(const std::string& path) {
  FILE* f = fopen(path.c_str(), "r");
  if (!f) return nullptr;
  X509* c = PEM_read_X509(f, nullptr, nullptr, nullptr);
  fclose(f);
  return c;
}

int Mode(const std::string& path) {
  struct stat st {};
  stat(path.c_str(), &st);
  return st.st_mode & 0777;
}

std::string Text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Whether `leaf` verifies against `ca` as a TLS server certificate for IP `ip`.
bool Verifies(X509* ca, X509* leaf, const std::string& ip) {
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf, nullptr);
  X509_VERIFY_PARAM* p = X509_STORE_CTX_get0_param(ctx);
  X509_VERIFY_PARAM_set_purpose(p, X509_PURPOSE_SSL_SERVER);
  X509_VERIFY_PARAM_set1_ip_asc(p, ip.c_str());
  bool ok = X509_verify_cert(ctx) == 1;
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  return ok;
}

TEST(UpstreamTlsCerts, TheCaSignsANodeCertificateForItsAddressOnly) {
  std::string run =
      (fs::temp_directory_path() / ("upstream-tls-" + std::to_string(getpid()))).string();
  fs::remove_all(run);
  ASSERT_TRUE(EnsureCa(run).ok());
  ASSERT_TRUE(EnsureNode(run, "web1", "127.0.0.1").ok());
  EXPECT_EQ(Mode(topo::UpstreamTlsDir(run)), 0700);
  EXPECT_EQ(Mode(run + "/tls/upstream/ca.key"), 0600);
  EXPECT_EQ(Mode(KeyPath(run, "web1")), 0600);
  EXPECT_EQ(Mode(CaPath(run)), 0644);
  X509* ca = Read(CaPath(run));
  X509* leaf = Read(CertPath(run, "web1"));
  ASSERT_NE(ca, nullptr);
  ASSERT_NE(leaf, nullptr);
  EXPECT_TRUE(Verifies(ca, leaf, "127.0.0.1"));
  EXPECT_FALSE(Verifies(ca, leaf, "127.0.0.2"));  // the name check is not weakened
  EXPECT_FALSE(Verifies(leaf, leaf, "127.0.0.1"));

  // Kept across starts while good: same bytes.
  std::string before = Text(CertPath(run, "web1"));
  ASSERT_TRUE(EnsureCa(run).ok());
  ASSERT_TRUE(EnsureNode(run, "web1", "127.0.0.1").ok());
  EXPECT_EQ(Text(CertPath(run, "web1")), before);
  // The node moved: a new certificate for its new address.
  ASSERT_TRUE(EnsureNode(run, "web1", "198.18.2.11").ok());
  X509* moved = Read(CertPath(run, "web1"));
  EXPECT_TRUE(Verifies(ca, moved, "198.18.2.11"));
  EXPECT_FALSE(Verifies(ca, moved, "127.0.0.1"));
  // A new CA (its files lost): the node's certificate no longer verifies and is made anew.
  fs::remove(run + "/tls/upstream/ca.key");
  ASSERT_TRUE(EnsureCa(run).ok());
  X509* ca2 = Read(CaPath(run));
  EXPECT_FALSE(Verifies(ca2, moved, "198.18.2.11"));
  ASSERT_TRUE(EnsureNode(run, "web1", "198.18.2.11").ok());
  X509* renewed = Read(CertPath(run, "web1"));
  EXPECT_TRUE(Verifies(ca2, renewed, "198.18.2.11"));
  for (X509* c : {ca, leaf, moved, ca2, renewed}) X509_free(c);
  fs::remove_all(run);
}

}  // namespace
}  // namespace millions::ctl::upstream_tls
