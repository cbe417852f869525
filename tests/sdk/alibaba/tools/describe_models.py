"""Prints, for actions of alibabacloud-kms20160120, what the SDK sends and what its response models read.

Not a test: a reading aid for whoever writes the server side. It reads the installed package's own source
(client.py and models/_*_response_body.py), so what it prints is what that version does.

    target/sdk/python/bin/python tests/sdk/alibaba/tools/describe_models.py [Action ...]

With no action named it describes every action. For each action: the HTTP method, the parameters that go in the
query and in the form body (with any list or map the SDK turns into a JSON string, "shrink"), then the JSON the
response model reads, as a tree: `Name: type` for a scalar, `Name: {` for an object, `Name: [{` for a list of
objects. A field the model does not read is ignored by the SDK; a field it reads with the wrong shape breaks it.
"""

import importlib.util
import os
import re
import sys


def package_dir():
    spec = importlib.util.find_spec("alibabacloud_kms20160120")
    return os.path.dirname(spec.origin)


def snake(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def action_blocks(client_source):
    """{Action: source of its sync *_with_options method}."""
    blocks = {}
    starts = [m.start() for m in re.finditer(r"\n    (?:async )?def [a-z0-9_]+\(", client_source)]
    starts.append(len(client_source))
    for begin, end in zip(starts, starts[1:]):
        block = client_source[begin:end]
        action = re.search(r"action = '([A-Za-z0-9]+)'", block)
        if action and re.match(r"\n    def [a-z0-9_]+_with_options\(", block):
            blocks.setdefault(action.group(1), block)
    return blocks


def request_params(block):
    method = re.search(r"method = '([A-Z]+)'", block).group(1)
    query = re.findall(r"query\['([A-Za-z0-9.]+)'\]", block)
    body = re.findall(r"body\['([A-Za-z0-9.]+)'\]", block)
    shrunk = re.findall(r"array_to_string_with_specified_style\(tmp_req\.[a-z0-9_]+, '([A-Za-z0-9]+)', '([a-z]+)'\)", block)
    return method, query, body, shrunk


def classes(source):
    """{ClassName: class source} of one models file."""
    out = {}
    parts = re.split(r"\nclass ([A-Za-z0-9]+)\(DaraModel\):", source)
    for i in range(1, len(parts), 2):
        out[parts[i]] = parts[i + 1]
    return out


def model_source(class_name, cache):
    """Finds the models file that defines `class_name`."""
    if class_name in cache:
        return cache[class_name]
    models = os.path.join(package_dir(), "models")
    for file_name in os.listdir(models):
        if file_name.endswith(".py"):
            for name, source in classes(read(os.path.join(models, file_name))).items():
                cache.setdefault(name, source)
    return cache.get(class_name)


def fields(class_source):
    """[(JSONName, kind, detail)] read by from_map: kind is scalar (detail = annotation), model or list."""
    annotations = dict(re.findall(r"\n        ([a-z0-9_]+): ([^=]+?) = None,", class_source))
    from_map = class_source[class_source.index("def from_map"):]
    out = []
    for m in re.finditer(r"if m\.get\('([A-Za-z0-9]+)'\) is not None:\n((?:            .*\n|\n)*)", from_map):
        name, body = m.group(1), m.group(2)
        nested = re.search(r"main_models\.([A-Za-z0-9]+)\(\)", body)
        if "for k1 in" in body and nested:
            out.append((name, "list", nested.group(1)))
        elif "for k1 in" in body:
            out.append((name, "scalars", ""))
        elif nested:
            out.append((name, "model", nested.group(1)))
        else:
            attr = re.search(r"self\.([a-z0-9_]+) = m\.get", body)
            annotation = annotations.get(attr.group(1), "?") if attr else "?"
            out.append((name, "scalar", annotation.strip()))
    return out


def tree(class_name, cache, indent, lines):
    source = model_source(class_name, cache)
    if source is None:
        lines.append(f"{indent}(model {class_name} not found)")
        return
    for name, kind, detail in fields(source):
        if kind == "scalar":
            lines.append(f"{indent}{name}: {detail}")
        elif kind == "scalars":
            lines.append(f"{indent}{name}: [scalars]")
        elif kind == "model":
            lines.append(f"{indent}{name}: {{")
            tree(detail, cache, indent + "  ", lines)
            lines.append(f"{indent}}}")
        else:
            lines.append(f"{indent}{name}: [{{")
            tree(detail, cache, indent + "  ", lines)
            lines.append(f"{indent}}}]")


def describe(action, block, cache):
    method, query, body, shrunk = request_params(block)
    lines = [f"### {action}", f"{method} /; query: {', '.join(query) or '-'}; form body: {', '.join(body) or '-'}"]
    for name, style in shrunk:
        lines.append(f"{name} is sent as a {style.upper()} string (the model takes a list/dict)")
    lines.append("response body:")
    tree(f"{action}ResponseBody", cache, "  ", lines)
    return "\n".join(lines)


def main():
    client = read(os.path.join(package_dir(), "client.py"))
    blocks = action_blocks(client)
    wanted = sys.argv[1:] or sorted(blocks)
    cache = {}
    for action in wanted:
        if action not in blocks:
            print(f"### {action}\nnot in this SDK\n")
            continue
        print(describe(action, blocks[action], cache))
        print()


if __name__ == "__main__":
    main()
