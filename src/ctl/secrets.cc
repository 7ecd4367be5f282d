#include "ctl/secrets.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "core/env.h"
#include "core/secret.h"

namespace millions::ctl::secrets {
namespace {

std::string Hex(const unsigned char* p, size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += kDigits[p[i] >> 4];
    s += kDigits[p[i] & 15];
  }
  return s;
}

// A temporary name beside `path`, unique across threads and processes.
std::string TempBeside(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  return path + ".tmp." + std::to_string(getpid()) + "." + std::to_string(counter++);
}

// Writes `text` to a new file `tmp` with mode 0600, owned by `user` when given.
void WriteNew(const std::string& tmp, const std::string& text, const std::string& user) {
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot create " + tmp + ": " + strerror(errno));
  bool ok = fchmod(fd, 0600) == 0;
  if (ok && !user.empty()) {
    passwd* pw = getpwnam(user.c_str());
    ok = pw && fchown(fd, pw->pw_uid, pw->pw_gid) == 0;
  }
  for (size_t done = 0; ok && done < text.size();) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  ok = fsync(fd) == 0 && ok;
  close(fd);
  if (!ok) {
    unlink(tmp.c_str());
    throw std::runtime_error("cannot write " + tmp);
  }
}

void MakeSecretsDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  // Only the runner's user reads the secrets; the engines get the files written for them.
  if (chmod(dir.c_str(), 0700) != 0)
    throw std::runtime_error("cannot create " + dir + ": " + strerror(errno));
}

}  // namespace

std::string Dir(const std::string& run_dir) { return run_dir + "/secrets"; }

const std::vector<std::string>& All() {
  static const std::vector<std::string> kAll = {
      kPgSuperuser,  kPgReplication, kPgApp,        kEtcdRoot,       kEtcdPatroni,
      kEtcdShardMap, kPatroniRest,   "nats_web",    "nats_worker",   "nats_admin",
      "nats_route",  "redis_admin",  "redis_cache", "redis_replica", "redis_timeline"};
  return kAll;
}

void EnsureAll(const std::string& run_dir) {
  for (const auto& name : All()) Get(run_dir, name);
}

std::vector<std::string> Missing(const std::string& run_dir) {
  std::vector<std::string> out;
  for (const auto& name : All())
    if (secret::ReadFile(Path(run_dir, name)).empty()) out.push_back(name);
  return out;
}

std::string Path(const std::string& run_dir, const std::string& name) {
  return Dir(run_dir) + "/" + name;
}

std::string Get(const std::string& run_dir, const std::string& name) {
  std::string path = Path(run_dir, name);
  if (std::string s = secret::ReadFile(path); !s.empty()) return s;
  MakeSecretsDir(Dir(run_dir));
  unsigned char bytes[32];
  Env::Default().RandomBytes(bytes, sizeof bytes);
  std::string fresh = Hex(bytes, sizeof bytes);
  std::string tmp = TempBeside(path);
  WriteNew(tmp, fresh + "\n", "");
  // link() never replaces: whoever links first wins, and everyone reads the winner.
  int rc = link(tmp.c_str(), path.c_str());
  int err = errno;
  unlink(tmp.c_str());
  if (rc != 0 && err != EEXIST)
    throw std::runtime_error("cannot create " + path + ": " + strerror(err));
  std::string s = secret::ReadFile(path);
  if (s.empty()) throw std::runtime_error("cannot read " + path);
  return s;
}

void WriteFile(const std::string& path, const std::string& text, const std::string& user) {
  std::string tmp = TempBeside(path);
  WriteNew(tmp, text, user);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    throw std::runtime_error("cannot write " + path + ": " + strerror(err));
  }
}

std::string PgPassLine(const std::string& user, const std::string& password) {
  auto esc = [](const std::string& s) {
    std::string o;
    for (char c : s) {
      if (c == ':' || c == '\\') o += '\\';
      o += c;
    }
    return o;
  };
  return "*:*:*:" + esc(user) + ":" + esc(password) + "\n";
}

void WritePgPassFiles(const std::string& run_dir, const std::string& app_user) {
  std::string app = PgPassLine(app_user, Get(run_dir, kPgApp));
  WriteFile(Path(run_dir, kPgPassApp), app, "");
  WriteFile(Path(run_dir, kPgPassAll),
            PgPassLine("postgres", Get(run_dir, kPgSuperuser)) +
                PgPassLine("replicator", Get(run_dir, kPgReplication)) + app,
            "");
}

std::string Base64(const std::string& s) {
  std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
  int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string PatroniRestAuthorization(const std::string& run_dir) {
  std::string pw = secret::ReadFile(Path(run_dir, kPatroniRest));
  return pw.empty() ? "" : "Basic " + Base64("millions:" + pw);
}

std::vector<std::string> NodeEnv(const std::string& run_dir) {
  return {std::string(secret::kEnv) + "=" + Dir(run_dir),
          "PGPASSFILE=" + Path(run_dir, kPgPassApp)};
}

}  // namespace millions::ctl::secrets
