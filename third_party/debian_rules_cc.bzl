"""rules_cc from Debian's bazel-rules-cc, adapted to Bazel 4.2.3.

Debian ships rules_cc 0.0.4, which loads `use_cpp_toolchain` from @bazel_tools; Bazel 4.2.3 does
not define it. This rule copies the Debian tree into the external repository and rewrites those
loads, so every fresh machine gets a working @rules_cc without network access or vendored code.
"""

_PATCHED_FILES = [
    "cc/private/rules_impl/compiler_flag.bzl",
    "cc/private/rules_impl/cc_flags_supplier.bzl",
]

def _debian_rules_cc_impl(repository_ctx):
    source = repository_ctx.attr.path
    result = repository_ctx.execute(["cp", "-R", source + "/.", "."])
    if result.return_code != 0:
        fail("cannot copy rules_cc from %s (is bazel-rules-cc installed?): %s" % (source, result.stderr))
    for relative in _PATCHED_FILES:
        text = repository_ctx.read(relative)
        text = text.replace(', "use_cpp_toolchain")', ")")
        text = text.replace("use_cpp_toolchain()", '["@bazel_tools//tools/cpp:toolchain_type"]')
        repository_ctx.file(relative, text, executable = False)

debian_rules_cc = repository_rule(
    implementation = _debian_rules_cc_impl,
    attrs = {"path": attr.string(default = "/usr/share/bazel/rules/cc")},
    local = True,
)
