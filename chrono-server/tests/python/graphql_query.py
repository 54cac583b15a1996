# The documented GraphQL query, verbatim, sent as an HTTP POST (Python's standard library);
# prints the response. The first argument is the server's http://HOST:PORT.
import json
import sys
import urllib.request

query = """
query {
  users(id: 1) {
    name
    email
    orders {
      total
      status
    }
  }
}
"""

request = urllib.request.Request(
    sys.argv[1] + "/graphql",
    data=json.dumps({"query": query}).encode(),
    headers={"Content-Type": "application/json"},
)
with urllib.request.urlopen(request) as response:
    print(response.read().decode())
