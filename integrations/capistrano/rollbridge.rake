# rollbridge tasks for Capistrano 3 (https://capistranorb.com): shell commands on each host, no gem.
#
# Install: copy this file to lib/capistrano/tasks/rollbridge.rake and load it from the Capfile:
#   Dir.glob("lib/capistrano/tasks/*.rake").each { |r| import r }
# then in config/deploy.rb:
#   set :rollbridge_config, "/srv/app/rollbridge.js"
#   SSHKit.config.command_map[:rollbridge] = "/usr/local/bin/rollbridge"
#
# Hosts are walked one at a time: a failure on one stops the rest and `cap` exits 1 with rollbridge's
# error code, message and fix. Documentation: docs/integrations/capistrano.md in the rollbridge repository.
require "json"
require "shellwords"

module RollbridgeCapistrano
  # A rollbridge command that failed on a host; its message carries rollbridge's code, message and fix.
  class CommandFailed < StandardError; end

  # Collects a command's output as it arrives (an SSHKit interaction handler) and reports each
  # `{"type":"phase"}` line of `--json --stream` as a progress line for the host.
  class Output
    attr_reader :stdout, :stderr

    def initialize(backend, label)
      @backend = backend
      @label = label
      @stdout = +""
      @stderr = +""
      @pending = +""
    end

    def on_data(_command, stream_name, data, _channel)
      # SSH hands over bytes; rollbridge writes UTF-8 (a character may straddle two chunks).
      data = data.dup.force_encoding(Encoding::UTF_8)
      # With `pty: true` both streams arrive as stdout; JSON lines are still told apart from the rest.
      return @stderr << data if stream_name == :stderr

      @stdout << data
      @pending << data
      while (newline = @pending.index("\n"))
        record = RollbridgeCapistrano.parse_object(@pending.slice!(0..newline))
        @backend.info("#{@label} #{RollbridgeCapistrano.describe_phase(record)}") if record && record["type"] == "phase"
      end
    end

    # The JSON documents on stdout: the whole output (one indented document), else one per line (NDJSON).
    def documents
      start = @stdout.index("{")
      whole = start && RollbridgeCapistrano.parse_object(@stdout[start..])
      return [whole] if whole

      @stdout.lines.map { |line| RollbridgeCapistrano.parse_object(line) }.compact
    end
  end

  module_function

  def parse_object(text)
    value = JSON.parse(text.strip)
    value.is_a?(Hash) ? value : nil
  rescue JSON::ParserError
    nil
  end

  # One progress line per phase, worded as rollbridge prints it on a terminal.
  def describe_phase(record)
    duration = record["durationMs"].is_a?(Numeric) ? " (#{record["durationMs"].round} ms)" : ""
    case record["phase"]
    when "waiting" then "waiting for #{record["detail"] || record["wait"]}"
    when "started"
      policy = record["policy"] ? " (#{record["policy"]})" : ""
      port = record["port"].nil? ? "" : " port #{record["port"]}"
      "started #{record["processId"]}#{policy} pid #{record["pid"]}#{port}#{duration}"
    when "healthy" then "healthy #{record["processId"]}#{duration}"
    when "switched" then "switched traffic to #{record["releaseId"]}#{duration}"
    when "watching" then "watching #{record["releaseId"]} (#{record["detail"]})"
    when "watched" then "watch window passed#{duration}"
    when "draining" then "draining #{record["previousReleaseId"]} (#{record["detail"] || "in the background"})"
    else
      subject = record["processId"] || record["releaseId"]
      "#{record["phase"]}#{subject ? " #{subject}" : ""}#{duration}"
    end
  end

  # "127.0.0.1:2202" when the server has a port, so hosts sharing an address stay distinguishable.
  def label(host)
    host.port ? "#{host.hostname}:#{host.port}" : host.hostname.to_s
  end

  # The flags every command gets: the config on the host (required).
  def config_args(config)
    if config.nil? || config.to_s.empty?
      raise CommandFailed, "rollbridge: :rollbridge_config is not set; " \
        "set it in config/deploy.rb to the config's path on the hosts, e.g. set :rollbridge_config, \"/srv/app/rollbridge.js\""
    end
    ["--config", config.to_s]
  end

  # Shell-escapes one argument; a leading "~/" stays unquoted so the host's shell expands it, as it
  # does in Capistrano's own paths (set :deploy_to, "~/app").
  def escape(arg)
    arg.start_with?("~/") ? "~/#{Shellwords.escape(arg[2..])}" : Shellwords.escape(arg)
  end

  # ["--flag", value] when the value is set, else nothing.
  def optional(flag, value)
    value.nil? || value.to_s.empty? ? [] : [flag, value.to_s]
  end

  # Runs `rollbridge <command> <args> --json [--stream]` on the backend's host and returns the result
  # document; raises CommandFailed with rollbridge's code, message and fix when the command fails.
  def run(backend, host, command, args, stream: false)
    output = Output.new(backend, label(host))
    argv = [command, *args, "--json", *(stream ? ["--stream"] : [])]
    backend.info("#{label(host)} rollbridge #{argv.join(" ")}")
    ok = backend.with(rollbridge_output: "json") do
      backend.execute(:rollbridge, *argv.map { |arg| escape(arg) },
                      raise_on_non_zero_exit: false, verbosity: :debug, interaction_handler: output)
    end
    documents = output.documents
    failure = documents.reverse.find { |document| document["error"].is_a?(Hash) }
    raise CommandFailed, failure_message(host, command, failure["error"], output) if failure
    raise CommandFailed, failure_message(host, command, nil, output) unless ok

    result = documents.reverse.find { |document| document["type"] == "result" } || documents.last || {}
    result.is_a?(Hash) && result["result"].is_a?(Hash) ? result["result"] : result.reject { |key, _| key == "type" }
  end

  def failure_message(host, command, error, output)
    heading = "rollbridge #{command} failed on #{label(host)}"
    if error
      text = "#{heading}\nerror #{error["code"]}: #{error["message"]}"
      text += "\n  fix: #{error["fix"]}" if error["fix"]
      return text
    end
    # Not rollbridge's JSON answer (e.g. the binary is missing): show what the host printed.
    printed = [output.stderr, output.stdout].map(&:strip).reject(&:empty?).join("\n")
    "#{heading}: #{printed.empty? ? "no output" : printed}"
  end

  def summarize_switch(result)
    changed = result["changed"] == false ? ", unchanged" : ""
    seconds = result["durationMs"].is_a?(Numeric) ? " in #{(result["durationMs"] / 1000.0).round(2)} s" : ""
    "release #{result["activeReleaseId"]} is active (previous: #{result["previousReleaseId"] || "none"})#{changed}#{seconds}"
  end

  def summarize_plan(plan)
    starts = Array(plan["start"]).map { |process| "#{process["processId"]} (#{process["policy"]}, port #{process["port"]})" }
    drain = plan["drain"] ? ", then drain #{plan["drain"]["releaseId"]} and stop #{Array(plan["drain"]["processes"]).join(", ")}" : ""
    "plan for release #{plan["releaseId"]} (nothing changed): start #{starts.empty? ? "nothing" : starts.join(", ")}, " \
      "switch traffic#{drain}"
  end

  def summarize_takeover(result)
    legacy = result.dig("plan", "legacy") || {}
    found = "#{Array(legacy["screens"]).size} screen session(s), #{Array(legacy["processes"]).size} legacy process(es)"
    return "legacy-takeover plan (nothing changed): #{found} to stop, then release #{result.dig("plan", "releasePath")}" if result["dryRun"]

    stopped = result["legacy"].is_a?(Hash) ? "#{result["legacy"]["stopped"]} stopped, #{result["legacy"]["killed"]} killed" : found
    "release #{result["activeReleaseId"]} is active; legacy processes: #{stopped}; port gap #{result["portGapMs"]} ms"
  end

  def summarize_status(status)
    proxy = status["proxy"].is_a?(Hash) ? "#{status["proxy"]["host"]}:#{status["proxy"]["port"]}" : "-"
    # A release id deployed again (a rollback) is listed once per run; the last entry is the live one.
    active = Array(status["releases"]).reverse.find { |release| release["releaseId"] == status["activeReleaseId"] } || {}
    processes = Array(active["processes"]).map { |process| "#{process["id"]} #{process["state"]}" }
    "active release #{status["activeReleaseId"] || "none"} on proxy #{proxy}" \
      "#{processes.empty? ? "" : " (#{processes.join(", ")})"}"
  end
end

namespace :load do
  task :defaults do
    set :rollbridge_config, nil
    set :rollbridge_roles, :app
    # Capistrano's release timestamp and release directory (a new release under releases/ in a git
    # deploy); in a standalone setup, point :rollbridge_release_path at the prepared release.
    set :rollbridge_release_id, -> { fetch(:release_timestamp) { now } }
    set :rollbridge_release_path, -> { release_path }
    set :rollbridge_revision, -> { fetch(:current_revision, nil) }
    # deploy:rollback's target release in a git deploy (ROLLBACK_RELEASE or the one before), else
    # nil: rollbridge's previous release.
    set :rollbridge_rollback_release_id, -> { fetch(:rollback_timestamp, nil) }
    set :rollbridge_ensure_daemon, true
    set :rollbridge_daemon_log_path, nil
    set :rollbridge_daemon_pid_path, nil
    set :rollbridge_watch, nil
    set :rollbridge_restart_names, []
    set :rollbridge_restart_process, nil
    set :rollbridge_restart_policy, nil
    set :rollbridge_restart_cooldown, nil
    set :rollbridge_restart_check_url, nil
    # deploy and legacy-takeover only print their plan per host (--dry-run; deploy needs no daemon for it).
    set :rollbridge_dry_run, false
    # deploy does nothing on a host where this release id is already active (same path and revision).
    set :rollbridge_skip_if_active, false
    # Print rollbridge's phases per host as they happen (`--json --stream`); false prints only the result.
    set :rollbridge_progress, true
    # Seconds to pause between two hosts (SSHKit's sequence runner waits 2 s unless told).
    set :rollbridge_wait, 0
  end
end

namespace :rollbridge do
  rollbridge_hosts = -> { roles(*Array(fetch(:rollbridge_roles))) }
  daemon_args = lambda do
    RollbridgeCapistrano.optional("--daemon-log-path", fetch(:rollbridge_daemon_log_path)) +
      RollbridgeCapistrano.optional("--daemon-pid-path", fetch(:rollbridge_daemon_pid_path))
  end
  release_args = lambda do
    ["--release-path", fetch(:rollbridge_release_path).to_s, "--release-id", fetch(:rollbridge_release_id).to_s] +
      RollbridgeCapistrano.optional("--revision", fetch(:rollbridge_revision))
  end

  desc "Deploy the release with rollbridge, one host after the other (health-checked switch, drain; :rollbridge_dry_run shows the plan)"
  task :deploy do
    dry_run = fetch(:rollbridge_dry_run)
    args = RollbridgeCapistrano.config_args(fetch(:rollbridge_config)) + release_args.call +
           (fetch(:rollbridge_skip_if_active) ? ["--skip-if-active"] : []) +
           RollbridgeCapistrano.optional("--watch", fetch(:rollbridge_watch)) +
           if dry_run then ["--dry-run"]
           elsif fetch(:rollbridge_ensure_daemon) then ["--ensure-daemon", *daemon_args.call]
           else []
           end
    on rollbridge_hosts.call, in: :sequence, wait: fetch(:rollbridge_wait) do |host|
      result = RollbridgeCapistrano.run(self, host, "deploy", args, stream: fetch(:rollbridge_progress) && !dry_run)
      summary = dry_run ? RollbridgeCapistrano.summarize_plan(result["plan"] || {}) : RollbridgeCapistrano.summarize_switch(result)
      info "#{RollbridgeCapistrano.label(host)} #{summary}"
    end
  end

  desc "Switch rollbridge back to the previous release (or :rollbridge_rollback_release_id), one host after the other"
  task :rollback do
    args = RollbridgeCapistrano.config_args(fetch(:rollbridge_config)) +
           RollbridgeCapistrano.optional("--release-id", fetch(:rollbridge_rollback_release_id))
    on rollbridge_hosts.call, in: :sequence, wait: fetch(:rollbridge_wait) do |host|
      result = RollbridgeCapistrano.run(self, host, "rollback", args, stream: fetch(:rollbridge_progress))
      info "#{RollbridgeCapistrano.label(host)} #{RollbridgeCapistrano.summarize_switch(result)}"
    end
  end

  desc "Restart processes of the active release (:rollbridge_restart_* settings), one host after the other"
  task :restart do
    args = RollbridgeCapistrano.config_args(fetch(:rollbridge_config)) +
           Array(fetch(:rollbridge_restart_names)).map(&:to_s) +
           RollbridgeCapistrano.optional("--process", fetch(:rollbridge_restart_process)) +
           RollbridgeCapistrano.optional("--policy", fetch(:rollbridge_restart_policy)) +
           RollbridgeCapistrano.optional("--cooldown", fetch(:rollbridge_restart_cooldown)) +
           RollbridgeCapistrano.optional("--check-url", fetch(:rollbridge_restart_check_url))
    on rollbridge_hosts.call, in: :sequence, wait: fetch(:rollbridge_wait) do |host|
      result = RollbridgeCapistrano.run(self, host, "restart", args, stream: fetch(:rollbridge_progress))
      info "#{RollbridgeCapistrano.label(host)} restarted #{Array(result["restarted"]).join(", ")}"
    end
  end

  desc "Show each host's active release, proxy port and processes"
  task :status do
    args = RollbridgeCapistrano.config_args(fetch(:rollbridge_config))
    on rollbridge_hosts.call, in: :sequence, wait: 0 do |host|
      status = RollbridgeCapistrano.run(self, host, "status", args)
      info "#{RollbridgeCapistrano.label(host)} #{RollbridgeCapistrano.summarize_status(status)}"
    end
  end

  desc "Prepare hosts for a rollbridge 0.1 deploy script: stop a stale daemon, orphans and legacy processes"
  task :predeploy_cleanup do
    args = RollbridgeCapistrano.config_args(fetch(:rollbridge_config)) +
           RollbridgeCapistrano.optional("--release-path", fetch(:rollbridge_release_path))
    on rollbridge_hosts.call, in: :sequence, wait: fetch(:rollbridge_wait) do |host|
      result = RollbridgeCapistrano.run(self, host, "predeploy-cleanup", args)
      info "#{RollbridgeCapistrano.label(host)} predeploy-cleanup: #{result["action"]}"
    end
  end

  desc "Hand over from screen sessions or hand-started processes to rollbridge (:rollbridge_dry_run shows the plan)"
  task :legacy_takeover do
    dry_run = fetch(:rollbridge_dry_run)
    args = RollbridgeCapistrano.config_args(fetch(:rollbridge_config)) + release_args.call + daemon_args.call +
           (dry_run ? ["--dry-run"] : [])
    on rollbridge_hosts.call, in: :sequence, wait: fetch(:rollbridge_wait) do |host|
      result = RollbridgeCapistrano.run(self, host, "legacy-takeover", args, stream: fetch(:rollbridge_progress) && !dry_run)
      info "#{RollbridgeCapistrano.label(host)} #{RollbridgeCapistrano.summarize_takeover(result)}"
    end
  end

  desc "Start a detached rollbridge daemon on each host unless one is running"
  task :ensure_daemon do
    args = RollbridgeCapistrano.config_args(fetch(:rollbridge_config)) + daemon_args.call
    on rollbridge_hosts.call, in: :sequence, wait: 0 do |host|
      status = RollbridgeCapistrano.run(self, host, "ensure-daemon", args)
      info "#{RollbridgeCapistrano.label(host)} daemon running: #{RollbridgeCapistrano.summarize_status(status)}"
    end
  end

  # Hooked after deploy:published, which fires in `cap deploy` and in `cap deploy:rollback` alike
  # (Capistrano's framework.rake): only a deploy deploys; a rollback switches rollbridge back.
  task :published do
    invoke fetch(:deploying) ? "rollbridge:deploy" : "rollbridge:rollback"
  end
end

# Only with Capistrano's deploy flow (require "capistrano/deploy" in the Capfile); a standalone Capfile
# has no deploy:published and maps its own tasks (task deploy: "rollbridge:deploy").
after "deploy:published", "rollbridge:published" if Rake::Task.task_defined?("deploy:published")
