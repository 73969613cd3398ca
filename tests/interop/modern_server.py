"""A server of protocol 2026-07-28 (and earlier revisions), built with the official Python SDK.

Usage: modern_server.py PORT. Serves Streamable HTTP at http://127.0.0.1:PORT/mcp.
"""

import sys

from mcp.server.mcpserver import Context, MCPServer

app = MCPServer("interop-modern")


@app.tool()
def echo(text: str) -> str:
    """Return the text, prefixed."""
    return f"Echo: {text}"


@app.tool()
async def count(n: int, ctx: Context) -> str:
    """Report progress n times, then answer."""
    for i in range(n):
        await ctx.report_progress(i + 1, n)
    return f"counted {n}"


app.run("streamable-http", host="127.0.0.1", port=int(sys.argv[1]))
