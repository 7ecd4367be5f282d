#include "ctl/admin_token.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace millions::ctl {

namespace {

bool WellFormed(const std::string& t) {
  if (t.size() != 64) return false;
  for (char c : t)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

std::string AdminTokenPath(const std::string& run_dir) { return run_dir + "/admin.token"; }

std::optional<std::string> ReadAdminToken(const std::string& run_dir) {
  std::ifstream in(AdminTokenPath(run_dir));
  std::string t;
  if (!in || !std::getline(in, t) || !WellFormed(t)) return std::nullopt;
  return t;
}

Result<std::string> EnsureAdminToken(const std::string& run_dir) {
  std::string path = AdminTokenPath(run_dir);
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    bool ours = S_ISREG(st.st_mode) && st.st_uid == ::geteuid() && (st.st_mode & 077) == 0;
    if (auto t = ReadAdminToken(run_dir); t && ours) return *t;
    ::unlink(path.c_str());  // not ours, not private, or not a token: a new one
  }
  std::error_code ec;
  std::filesystem::create_directories(run_dir, ec);
  if (sodium_init() < 0) return MakeError(Errc::kInternal, "admin_token", "libsodium failed");
  unsigned char raw[32];
  randombytes_buf(raw, sizeof raw);
  char hex[sizeof raw * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
  sodium_memzero(raw, sizeof raw);
  std::string line = std::string(hex) + "\n";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
  if (fd < 0) return MakeError(Errc::kInternal, "admin_token", "could not create " + path);
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(fd);
  if (!ok) return MakeError(Errc::kInternal, "admin_token", "could not write " + path);
  return std::string(hex);
}

int CheckAdminRequest(const http::Request& req, const std::string& token, std::string* code,
                      std::string* message) {
  // A browser says where a request comes from: anything but this origin is refused, token or
  // not (a page elsewhere cannot drive the runner, even with a token it somehow holds).
  auto site = req.header("sec-fetch-site");
  auto origin = req.header("origin");
  auto host = req.header("host");
  bool cross = site && *site != "same-origin" && *site != "none";
  if (origin && *origin != "null") {
    std::string_view o = *origin;
    size_t sep = o.find("://");
    cross = cross || !host || sep == std::string_view::npos || o.substr(sep + 3) != *host;
  } else if (origin) {
    cross = true;
  }
  if (cross) {
    *code = "cross_site";
    *message = "the runner's admin API refuses cross-site requests";
    return 403;
  }
  auto auth = req.header("authorization");
  constexpr std::string_view kBearer = "Bearer ";
  std::string_view given;
  if (auth && auth->size() > kBearer.size() &&
      http::IEquals(auth->substr(0, kBearer.size()), kBearer))
    given = auth->substr(kBearer.size());
  // Constant time: the comparison takes as long whatever prefix matches.
  bool good = !token.empty() && given.size() == token.size() &&
              sodium_memcmp(given.data(), token.data(), token.size()) == 0;
  if (!good) {
    *code = "unauthenticated";
    *message = "the admin API needs `Authorization: Bearer TOKEN` (the token is in RUN_DIR/" +
               std::string("admin.token") + ")";
    return 401;
  }
  return 0;
}

}  // namespace millions::ctl
