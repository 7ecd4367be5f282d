#include "ctl/process.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace millions::ctl {

namespace {

// The program's path as execvp would find it (searched here, before fork: the child may only
// make async-signal-safe calls, and a PATH search allocates).
std::string ResolveProgram(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t begin = 0;
  while (begin <= dirs.size()) {
    size_t end = dirs.find(':', begin);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(begin, end - begin);
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    begin = end + 1;
  }
  return name;  // execve fails, and the child says so
}

}  // namespace

// Everything the child needs is made before fork: the runner has threads (the admin API, the
// watchdog, the sanitizers' own), and a lock one of them held at the fork stays locked in the
// child for ever, so between fork and exec the child only makes async-signal-safe system calls
// (no malloc, no NSS lookup, no setenv, no stdio). A child that did deadlocked under ASan.
Result<pid_t> StartProcess(const Spawn& spec, const std::string& netns_path) {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  std::vector<std::string> env_strings;
  if (!spec.user.empty()) {
    passwd* pw = getpwnam(spec.user.c_str());
    if (!pw) return MakeError(Errc::kInternal, "no_user", "no such user " + spec.user);
    uid = pw->pw_uid;
    gid = pw->pw_gid;
    std::string name = pw->pw_name, home = pw->pw_dir;
    int n = 64;
    groups.resize(size_t(n));
    if (getgrouplist(name.c_str(), gid, groups.data(), &n) < 0) {
      groups.resize(size_t(n));
      if (getgrouplist(name.c_str(), gid, groups.data(), &n) < 0)
        return MakeError(Errc::kInternal, "groups", "cannot list the groups of " + name);
    }
    groups.resize(size_t(n));
    env_strings.push_back("HOME=" + home);
    env_strings.push_back("USER=" + name);
  }
  for (const auto& e : spec.env) env_strings.push_back(e);
  // The environment: ours, with the spec's names (and HOME, USER) replaced or added.
  std::vector<std::string> merged;
  auto name_of = [](const std::string& kv) { return kv.substr(0, kv.find('=')); };
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e, n = name_of(kv);
    bool replaced = false;
    for (const auto& o : env_strings) replaced = replaced || name_of(o) == n;
    if (!replaced) merged.push_back(std::move(kv));
  }
  for (size_t i = 0; i < env_strings.size(); ++i) {  // the last of a name wins, as putenv's
    bool later = false;
    for (size_t j = i + 1; j < env_strings.size(); ++j)
      later = later || name_of(env_strings[j]) == name_of(env_strings[i]);
    if (!later) merged.push_back(env_strings[i]);
  }
  std::vector<char*> envp;
  for (auto& kv : merged) envp.push_back(kv.data());
  envp.push_back(nullptr);
  std::string program = ResolveProgram(spec.argv.at(0));
  std::string exec_failed = "exec " + spec.argv[0] + " failed\n";
  // The namespace is opened here and entered in the child (setns is a plain system call).
  int netns = -1;
  if (!netns_path.empty()) {
    netns = open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (netns < 0) return MakeError(Errc::kInternal, "netns", "cannot open " + netns_path);
  }
  int log = open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) {
    if (netns >= 0) close(netns);
    return MakeError(Errc::kInternal, "log", "cannot open " + spec.log_path);
  }
  if (!spec.user.empty()) (void)fchown(log, uid, gid);
  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    close(log);
    if (netns >= 0) close(netns);
    return MakeError(Errc::kInternal, "fork", strerror(errno));
  }
  if (pid == 0) {
    // Before the user changes: entering a namespace needs CAP_SYS_ADMIN.
    if (netns >= 0 && setns(netns, CLONE_NEWNET) != 0) {
      static const char kMsg[] = "cannot enter the node's network namespace\n";
      ssize_t w = write(log, kMsg, sizeof kMsg - 1);
      (void)w;
      _exit(125);
    }
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
      if (setgroups(groups.size(), groups.data()) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
        _exit(126);
    }
    execve(program.c_str(), argv.data(), envp.data());
    ssize_t w = write(2, exec_failed.data(), exec_failed.size());
    (void)w;
    _exit(127);
  }
  close(log);
  if (netns >= 0) close(netns);
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
