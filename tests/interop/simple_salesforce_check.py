"""Drives the casebridge simulator with simple-salesforce, a third-party Salesforce client.

Usage: REQUESTS_CA_BUNDLE=CA.pem python3 simple_salesforce_check.py https://127.0.0.1:PORT
(the simulator started with --tls; CA.pem is the certificate authority it printed).
Exits 0 when every check passes; otherwise prints the failed check and exits 1.
"""
import json
import os
import ssl
import sys
import urllib.request

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)

BASE = sys.argv[1].rstrip("/")
VERSION = "59.0"


def sign_in():
    token = requests.post(
        BASE + "/services/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": "test-app",
            "client_secret": "test-secret",
            "username": "agent@test.example",
            "password": "agent-pw",
        },
        timeout=10,
    )
    token.raise_for_status()
    body = token.json()
    check(body["instance_url"] == BASE, "the token response names the https instance URL")
    return Salesforce(instance_url=body["instance_url"], session_id=body["access_token"], version=VERSION)


def check(condition, what):
    if not condition:
        print("FAILED: " + what)
        sys.exit(1)
    print("ok: " + what)


def strict_tls():
    """Python 3.13 verifies strictly by default (VERIFY_X509_STRICT); so must the certificate."""
    context = ssl.create_default_context(cafile=os.environ["REQUESTS_CA_BUNDLE"])
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    for host in ["127.0.0.1", "localhost"]:
        url = BASE.replace("127.0.0.1", host) + "/services/data"
        with urllib.request.urlopen(url, context=context, timeout=10) as answer:
            check(answer.status == 200, "strict TLS verification accepts the certificate for " + host)


def main():
    check(BASE.startswith("https://"), "the simulator serves https")
    strict_tls()
    sf = sign_in()
    check(sf.base_url.startswith("https://"), "simple-salesforce builds https URLs, unpatched")

    # Composite through restful(): 18 calls of 25 creates each, one account for all.
    account = sf.Account.create({"Name": "Interop Account"})
    check(account["success"] and account["id"].startswith("001"), "create Account through SFType")
    for batch in range(18):
        subrequests = [
            {
                "method": "POST",
                "url": "/services/data/v%s/sobjects/Contact" % VERSION,
                "referenceId": "c%d" % i,
                "body": {"LastName": "Interop%03d" % (batch * 25 + i), "AccountId": account["id"]},
            }
            for i in range(25)
        ]
        result = sf.restful("composite", method="POST", data=json.dumps({"allOrNone": True, "compositeRequest": subrequests}))
        codes = {r["httpStatusCode"] for r in result["compositeResponse"]}
        if codes != {201}:
            check(False, "composite batch %d created every contact: %s" % (batch, codes))
    check(True, "composite through restful(): 450 contacts in 18 calls")

    # Query with a relationship, paged (the simulator runs with --batch-size 200).
    first = sf.query("SELECT Id, LastName, Account.Name FROM Contact WHERE LastName LIKE 'Interop%' ORDER BY LastName")
    check(first["totalSize"] == 450 and not first["done"] and len(first["records"]) == 200, "query returns the first page")
    more = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    check(len(more["records"]) == 200 and more["records"][0]["LastName"] == "Interop200", "query_more follows nextRecordsUrl")
    everything = sf.query_all("SELECT Id, LastName, Account.Name FROM Contact WHERE LastName LIKE 'Interop%' ORDER BY LastName")
    records = everything["records"]
    check(everything["totalSize"] == 450 and len(records) == 450, "query_all pages through 450 rows")
    check(records[449]["Account"]["Name"] == "Interop Account", "relationship fields nest")
    check(len({r["Id"] for r in records}) == 450, "no row twice")

    # Create, get, update, delete.
    created = sf.Case.create({"Subject": "From simple-salesforce", "Product__c": "Arm"})
    case_id = created["id"]
    check(created["success"] and case_id.startswith("500"), "create Case")
    got = sf.Case.get(case_id)
    check(got["Subject"] == "From simple-salesforce" and got["Status"] == "New", "get Case")
    status = sf.Case.update(case_id, {"Status": "Closed"})
    check(status == 204, "update answers 204")
    check(sf.Case.get(case_id)["IsClosed"] is True, "update applied; IsClosed follows Status")
    check(sf.Case.delete(case_id) == 204, "delete answers 204")
    try:
        sf.Case.get(case_id)
        check(False, "a deleted case is gone")
    except SalesforceResourceNotFound as e:
        check(e.content[0]["errorCode"] == "ENTITY_IS_DELETED", "a deleted case raises SalesforceResourceNotFound")
    try:
        sf.Case.get("500Dn0000000zzzAAA")
        check(False, "a missing case is not found")
    except SalesforceResourceNotFound as e:
        check(e.content[0]["errorCode"] == "NOT_FOUND", "a missing case raises SalesforceResourceNotFound")

    described = sf.Case.describe()
    product = [f for f in described["fields"] if f["name"] == "Product__c"][0]
    check([p["value"] for p in product["picklistValues"]] == ["Arm", "Gripper"], "describe lists picklist values")

    limits = sf.limits()
    check(limits["DailyApiRequests"]["Max"] == 100000, "limits reports DailyApiRequests")
    usage = sf.api_usage.get("api-usage")
    check(usage is not None and usage.total == 100000 and usage.used > 0, "Sforce-Limit-Info parsed into api_usage")

    try:
        sf.query("SELECT Id FROM Case WHERE")
        check(False, "a malformed query is refused")
    except SalesforceMalformedRequest as e:
        check(e.content[0]["errorCode"] == "MALFORMED_QUERY", "a malformed query raises SalesforceMalformedRequest")
    try:
        sf.Case.create({"Subjekt": "typo"})
        check(False, "an unknown field is refused")
    except SalesforceMalformedRequest as e:
        check(e.content[0]["errorCode"] == "INVALID_FIELD", "an unknown field raises SalesforceMalformedRequest")

    # Expire every session after the next call.
    requests.post(BASE + "/__sim/faults", json={"expire_sessions_every": 1}, timeout=10).raise_for_status()
    sf.query("SELECT Id FROM Case LIMIT 1")
    try:
        sf.query("SELECT Id FROM Case LIMIT 1")
        check(False, "an expired session is refused")
    except SalesforceExpiredSession as e:
        check(e.content[0]["errorCode"] == "INVALID_SESSION_ID", "an expired session raises SalesforceExpiredSession")
    requests.delete(BASE + "/__sim/faults", timeout=10).raise_for_status()

    print("interop: all checks passed")


if __name__ == "__main__":
    main()
