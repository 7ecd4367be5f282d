#include "ctl/process.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace millions::ctl {

Result<pid_t> StartProcess(const Spawn& spec) {
  uid_t uid = 0;
  gid_t gid = 0;
  if (!spec.user.empty()) {
    passwd* pw = getpwnam(spec.user.c_str());
    if (!pw) return MakeError(Errc::kInternal, "no_user", "no such user " + spec.user);
    uid = pw->pw_uid;
    gid = pw->pw_gid;
  }
  int log = open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) return MakeError(Errc::kInternal, "log", "cannot open " + spec.log_path);
  if (!spec.user.empty()) (void)fchown(log, uid, gid);
  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    close(log);
    return MakeError(Errc::kInternal, "fork", strerror(errno));
  }
  if (pid == 0) {
    setsid();
    dup2(log, 1);
    dup2(log, 2);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    // No descriptor of the runner reaches a node: an inherited listening socket (the admin API)
    // would keep its port taken after the runner dies, and a second `up` could not bind it.
    if (close_range(3, ~0U, 0) != 0) {
      for (int fd = 3; fd < 65536; ++fd) close(fd);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (!spec.user.empty()) {
      passwd* pw = getpwuid(uid);
      if (initgroups(pw->pw_name, gid) != 0 || setgid(gid) != 0 || setuid(uid) != 0) _exit(126);
      setenv("HOME", pw->pw_dir, 1);
      setenv("USER", pw->pw_name, 1);
    }
    for (const auto& e : spec.env) putenv(const_cast<char*>(e.c_str()));
    execvp(argv[0], argv.data());
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(log);
  return pid;
}

uint64_t ProcessStartTicks(pid_t pid) {
  if (pid <= 0) return 0;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // "pid (comm) state ..." where comm may hold spaces and parentheses: fields count from the
  // last ')'. State is field 3, start time field 22.
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(stat.substr(close + 1));
  std::string field;
  uint64_t start = 0;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i == 3 && (field == "Z" || field == "X")) return 0;
    if (i == 22) start = std::strtoull(field.c_str(), nullptr, 10);
  }
  return start;
}

bool Ended(pid_t pid, bool child, uint64_t start_ticks, int* status) {
  *status = 0;
  if (pid <= 0) return true;
  if (child) {
    pid_t r = waitpid(pid, status, WNOHANG);
    return r == pid || (r < 0 && errno == ECHILD);
  }
  uint64_t now = ProcessStartTicks(pid);
  return now == 0 || (start_ticks != 0 && now != start_ticks);
}

std::vector<pid_t> ChildrenOf(pid_t parent) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 1));
    std::string state;
    long ppid = 0;
    if (rest >> state >> ppid && ppid == parent) out.push_back(std::stoi(name));
  }
  return out;
}

void SignalGroup(pid_t pid, int sig) {
  if (pid > 0) kill(-pid, sig);
}

void MakeDir(const std::string& dir, const std::string& user) {
  std::filesystem::create_directories(dir);
  if (user.empty()) return;
  if (passwd* pw = getpwnam(user.c_str())) {
    (void)chown(dir.c_str(), pw->pw_uid, pw->pw_gid);
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all);
  }
}

}  // namespace millions::ctl
