// The cnngraph program's subcommands (docs/cli.md). Each takes its own argv (argv[0] is
// "cnngraph <subcommand>") and returns the exit code; usage errors throw UsageError.
#pragma once

namespace cnngraph::cli {

int run_command(int argc, char** argv);
int bench_command(int argc, char** argv);
int describe_command(int argc, char** argv);
int convert_command(int argc, char** argv);

}  // namespace cnngraph::cli
