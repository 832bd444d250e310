"""Tenancy: tenants, users, memberships and the session scoping that seals them off."""

from tenants.models import Invitation, Membership, Role, Tenant, TenantKind, User
from tenants.scoping import (
    TenantScoped,
    TenantScopeError,
    bind_tenant,
    bound_tenant_id,
    system_session,
    tenant_session,
)

__all__ = [
    "Invitation",
    "Membership",
    "Role",
    "Tenant",
    "TenantKind",
    "TenantScopeError",
    "TenantScoped",
    "User",
    "bind_tenant",
    "bound_tenant_id",
    "system_session",
    "tenant_session",
]
