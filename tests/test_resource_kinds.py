"""jar, hql and xml resources: Hive SQL transpiled to DuckDB and run like a .sql script, what does not transpile
refused naming the construct, a jar refused at submit where no Java runtime is and run with java where one is, an
xml file delivered beside the entry file."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

from queue_core import Client
from queue_core.errors import InvalidInput
from queue_core.specs.hive import hive_to_duckdb
from queue_core.specs.resources import kind_of
from tests.support.jobs import resource_definition, source_definition, sql_output

HIVE = """
-- Hive: size() and collect_set() become DuckDB functions
CREATE TABLE by_state AS
SELECT state_code, count(*) AS cities, size(collect_set(city_id)) AS ids
FROM city
GROUP BY state_code;
"""


def add(client: Client, tmp_path: Path, name: str, filename: str, body: str) -> None:
    path = tmp_path / filename
    path.write_text(body)
    client.add_resource(name, path)


def test_resource_kinds_are_told_by_their_file_names():
    assert [kind_of(f) for f in ("a.jar", "b.HQL", "hive-site.xml", "c.tgz")] == ["jar", "hql", "xml", "tar.gz"]


@pytest.mark.parametrize(
    ("hive", "said"),
    [
        ("ADD JAR hdfs:///udf.jar", "statement 1: ADD JAR does not transpile to DuckDB"),
        ("SELECT 1; INSERT OVERWRITE TABLE t SELECT 1", "statement 2: INSERT OVERWRITE does not transpile"),
        ("SELECT TRANSFORM(a) USING 'cat' AS b FROM t", "TRANSFORM ... USING (a script run per row)"),
        ("SELECT FROM WHERE (", "is not Hive SQL"),
    ],
)
def test_hive_that_does_not_transpile_is_refused_naming_the_construct(hive: str, said: str):
    with pytest.raises(InvalidInput, match=said.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        hive_to_duckdb(hive, "etl.hql")


def test_hive_functions_become_duckdb_ones():
    assert hive_to_duckdb("SELECT collect_set(b) AS s FROM t", "f") == (
        "SELECT LIST(DISTINCT b) FILTER(WHERE NOT b IS NULL) AS s FROM t;\n"
    )


def test_a_jar_is_refused_at_submit_where_no_java_runtime_is(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    (tmp_path / "app.jar").write_bytes(b"PK\x05\x06" + b"\x00" * 18)  # an empty zip: a jar's shape
    client.add_resource("batch-app", tmp_path / "app.jar")
    client.define(resource_definition("run-jar", "batch-app", "app.jar"))
    monkeypatch.setenv("PATH", str(tmp_path / "no-java-here"))
    before = client.store.last_position()
    with pytest.raises(InvalidInput) as caught:
        client.submit("run-jar")
    assert "is a jar, run with java -jar, and there is no Java runtime (java on PATH) here" in str(caught.value)
    assert client.store.last_position() == before


@pytest.mark.usefixtures("fleet")
def test_an_hql_script_runs_transpiled_and_an_xml_file_is_delivered_beside_the_entry(
    client: Client, lake: Path, tmp_path: Path
):
    add(client, tmp_path, "state-stats", "state_stats.hql", HIVE)
    pipeline = {
        "inputs": [{"name": "city", "dataset": "dataos://files:none/city", "format": "csv"}],
        "outputs": [sql_output("by_state", "dataos://wh:stats/by_state", "table")],
    }
    client.define(
        source_definition(
            "hive-stats", {"type": "RESOURCE", "sourceDef": {"name": "state-stats"}}, "state_stats.hql",
            type="SQL", pipeline=pipeline,
        )
    )  # fmt: skip
    run = client.wait(client.submit("hive-stats"), timeout=60)
    assert run["status"] == "SUCCEEDED", run
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        found = con.execute("SELECT sum(cities), bool_and(cities = ids) FROM stats.by_state").fetchone()
    assert found == (50, True)  # the 50 cities, each counted once in its state
    add(client, tmp_path, "bad-hive", "bad.hql", "INSERT OVERWRITE TABLE t SELECT 1")
    client.define(source_definition("bad-hive", {"type": "RESOURCE", "sourceDef": {"name": "bad-hive"}}, "bad.hql",
                                    type="SQL", pipeline={"inputs": [], "outputs": []}))  # fmt: skip
    with pytest.raises(InvalidInput, match="statement 1: INSERT OVERWRITE does not transpile to DuckDB"):
        client.submit("bad-hive")

    add(client, tmp_path, "hive-site", "hive-site.xml", "<configuration><property>warehouse</property></configuration>")
    add(client, tmp_path, "show-config", "show.sh", "cat hive-site.xml\n")
    client.define(
        source_definition("configured", {"type": "RESOURCE", "sourceDef": {"name": "show-config"}}, "show.sh",
                          configFiles=["hive-site@1"])
    )  # fmt: skip
    shown = client.wait(client.submit("configured"), timeout=60)
    assert shown["status"] == "SUCCEEDED", shown
    assert any("<property>warehouse</property>" in line.line for line in client.logs(shown["id"]))
    client.define(source_definition("wrong", {"type": "WORKSPACE", "sourceDef": {"path": "jobs"}}, "x.sh",
                                    configFiles=["show-config"]))  # fmt: skip
    with pytest.raises(InvalidInput, match=r"configFiles\[0\]: resource 'show-config' is a sh file"):
        client.submit("wrong")


def _java_tools() -> dict[str, str]:
    """java, javac and jar from PATH, or pytest.skip saying which is missing."""
    tools = {name: shutil.which(name) for name in ("java", "javac", "jar")}
    missing = [name for name, path in tools.items() if path is None]
    if missing:
        pytest.skip(f"no {', '.join(missing)} on PATH: a real jar cannot be built and run here")
    return {name: str(path) for name, path in tools.items()}


@pytest.mark.usefixtures("fleet")
def test_a_jar_resource_runs_with_java_and_gets_its_args(client: Client, tmp_path: Path):
    tools = _java_tools()
    source = tmp_path / "src" / "Hello.java"
    source.parent.mkdir()
    source.write_text(
        "public class Hello { public static void main(String[] a) {"
        ' System.out.println("hello from a jar: " + String.join(",", a)); System.exit(a.length == 2 ? 0 : 3); } }\n'
    )
    classes = tmp_path / "classes"
    subprocess.run([tools["javac"], "-d", str(classes), str(source)], check=True, capture_output=True)
    jar = tmp_path / "hello.jar"
    build = [tools["jar"], "--create", "--file", str(jar), "--main-class", "Hello", "-C", str(classes), "."]
    subprocess.run(build, check=True, capture_output=True)
    client.add_resource("hello-jar", jar)
    client.define(source_definition("run-hello", {"type": "RESOURCE", "sourceDef": {"name": "hello-jar"}},
                                    "hello.jar", args="a b"))  # fmt: skip
    run = client.wait(client.submit("run-hello"), timeout=60)
    assert (run["status"], run["exit_code"]) == ("SUCCEEDED", 0), client.run_detail(run["id"])["message"]
    assert "hello from a jar: a,b" in [line.line for line in client.logs(run["id"])]
