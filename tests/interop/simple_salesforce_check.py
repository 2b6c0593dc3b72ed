"""Drives the casebridge simulator with simple-salesforce, a third-party Salesforce client.

Usage: python3 simple_salesforce_check.py http://127.0.0.1:PORT
Exits 0 when every check passes; otherwise prints the failed check and exits 1.
"""
import json
import sys

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)

BASE = sys.argv[1].rstrip("/")
VERSION = "59.0"


class LoopbackSession(requests.Session):
    """simple-salesforce builds https:// URLs from the instance host (for SObject calls and
    nextRecordsUrl pages); the simulator speaks plain HTTP on loopback."""

    def request(self, method, url, *args, **kwargs):
        host = BASE.split("://", 1)[1]
        if url.startswith("https://" + host):
            url = "http://" + url[len("https://"):]
        return super().request(method, url, *args, **kwargs)


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
    sf = Salesforce(
        instance_url=body["instance_url"],
        session_id=body["access_token"],
        session=LoopbackSession(),
        version=VERSION,
    )
    sf.base_url = BASE + "/services/data/v" + VERSION + "/"
    return sf


def check(condition, what):
    if not condition:
        print("FAILED: " + what)
        sys.exit(1)
    print("ok: " + what)


def main():
    sf = sign_in()

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
