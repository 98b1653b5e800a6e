"""Unit tests of the kubectl adapter: what of kubectl's stderr a message keeps (kube.first_error)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gitops_cli import kube
from gitops_cli.errors import SyncError

# kubectl 1.32 (this machine's) reporting a kustomization with helmCharts and no --enable-helm: klog, the error
# in an `err=<` block of tab-indented lines closed by ` >`
KLOG_BLOCK = """\
E1127 21:48:21.308110   22907 run.go:72] "command failed" err=<
\ttrouble configuring builtin HelmChartInflationGenerator with config: `
\tname: redis
\treleaseName: redis
\t`: must specify --enable-helm
 >
"""
# ... and a missing resource: klog, the error quoted on the line
KLOG_QUOTED = ('E1127 21:48:21.387676   22912 run.go:72] "command failed" err="accumulating resources: '
               'accumulation err=\'accumulating resources from \'missing.yaml\'\': \\"x\\" is not a file"\n')


def test_a_klog_error_block_is_the_reason_on_one_line() -> None:
    """It was `E1127 ... "command failed" err=<`: the cause (--enable-helm) was dropped."""
    assert kube.first_error(KLOG_BLOCK) == ("trouble configuring builtin HelmChartInflationGenerator with config: "
                                            "` name: redis releaseName: redis `: must specify --enable-helm")


def test_a_klog_quoted_error_is_unquoted() -> None:
    assert kube.first_error(KLOG_QUOTED) == ("accumulating resources: accumulation err='accumulating resources "
                                             "from 'missing.yaml'': \"x\" is not a file")
    # an escape JSON does not read (Go's \x..): the text as written, its quotes unescaped
    line = 'E0101 00:00:00.000001 1 run.go:72] "command failed" err="bad byte \\xff in \\"a.yaml\\""\n'
    assert kube.first_error(line) == 'bad byte \\xff in "a.yaml"'


def test_kubectls_own_error_lines_come_first_then_klog_errors_then_the_first_line() -> None:
    assert kube.first_error("Warning: x is deprecated\nerror: unable to recognize \"STDIN\"\n") == \
        'error: unable to recognize "STDIN"'
    assert kube.first_error("Error from server (Forbidden): nope\n") == "Error from server (Forbidden): nope"
    # an `error:` line inside a klog block is the block's, not a line of kubectl's own
    warned = 'W0101 00:00:00.000001 1 warn.go:1] "deprecated"\n' + KLOG_BLOCK
    assert kube.first_error(warned).endswith("must specify --enable-helm")
    assert kube.first_error('I0101 00:00:00.000001 1 a.go:1] "just so"\n') == '"just so"'
    assert kube.first_error("something odd\nmore\n") == "something odd"
    assert kube.first_error("") == "no error output"
    # a block cut short (kubectl killed): what there is of it
    assert kube.first_error(KLOG_BLOCK.rsplit(" >", 1)[0]).endswith("must specify --enable-helm")


def test_a_secret_in_the_error_is_masked() -> None:
    from gitops_cli import output

    output.register_secret("s3cr3t-t0ken-value")  # forgotten after the test (conftest)
    text = KLOG_BLOCK.replace("name: redis", "name: s3cr3t-t0ken-value")
    assert "s3cr3t" not in kube.first_error(text) and "name: ***" in kube.first_error(text)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl (kustomize works offline)")
def test_the_real_kubectl_kustomize_error_keeps_its_cause(tmp_path: Path) -> None:
    """A kustomization with helmCharts: kubectl (offline) refuses it without --enable-helm; the message says so."""
    (tmp_path / "kustomization.yaml").write_text(
        "helmCharts:\n- name: redis\n  repo: https://charts.example.com\n  version: 1.0.0\n  releaseName: redis\n")
    with pytest.raises(SyncError) as caught:
        kube.kustomize(kube.Kubectl(), tmp_path, "apps/redis")
    message = caught.value.message
    assert message.startswith("apps/redis: kubectl kustomize failed (exit 1): ")
    assert "--enable-helm" in message and "\n" not in message
